# A deploy to production needs a person to approve it first.
package nofx.step

import rego.v1

deny contains finding if {
	some step in input.steps
	step.category == "deploy"
	step.environment == "production"
	not step.requires_approval
	finding := {
		"step": step.key,
		"code": "compliance.production_deploy_without_approval",
		"msg": sprintf("deploys to production with %s, which has no approval step", [step.tool_id]),
		"remediation": sprintf("give tool %s an approval_policy so a person signs off before it runs", [step.tool_id]),
	}
}
