"""The gate evaluators: structural, risk, compliance and resource."""
