# A plan that changes production should undo itself when a step fails.
package nofx.step

import rego.v1

warn contains finding if {
	some step in input.steps
	step.environment == "production"
	step.mutating
	not input.plan.rollback_on_failure
	finding := {
		"step": step.key,
		"code": "compliance.production_without_auto_rollback",
		"msg": "changes production in a plan that will not roll back on failure",
		"remediation": "plan with options.rollback_on_failure = true",
	}
}
