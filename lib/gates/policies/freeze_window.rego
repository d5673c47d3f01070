# No changes during a freeze window (config: gates.compliance.freeze_windows).
package nofx.plan

import rego.v1

deny contains finding if {
	some window in input.config.freeze_windows
	window.start_ns <= input.now_ns
	input.now_ns < window.end_ns
	input.plan.mutating_steps > 0
	finding := {
		"code": "compliance.freeze_window",
		"msg": sprintf("change freeze until %s (%s): this plan changes things", [window.end, window.reason]),
		"remediation": "wait for the freeze to end, or have an admin override the compliance gate with a reason",
	}
}
