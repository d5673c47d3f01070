# Data leaving the company needs a compliance tag (e.g. compliance:sox,
# compliance:gdpr) on the backlog item: someone classified what is exported.
package nofx.step

import rego.v1

deny contains finding if {
	some step in input.steps
	step.category == "export"
	not has_compliance_tag(step)
	finding := {
		"step": step.key,
		"code": "compliance.export_without_tag",
		"msg": sprintf("exports data with %s, but the item has no compliance tag", [step.tool_id]),
		"remediation": "tag the backlog item with the rule it exports under, e.g. compliance:gdpr",
	}
}

has_compliance_tag(step) if {
	some tag in step.tags
	startswith(tag, "compliance")
}
