"""Multi-model comparison: ask LLM providers for a plan, check and score their
answers against the deterministic plan, and record what each call cost.

The pure parts (prompt, proposal checks, scoring, adoption, pricing) import
nothing heavy. The official SDKs are imported only inside the provider
adapters (`provider_openai`, `provider_anthropic`), which load when a request
actually compares models: importing `lib.llm` or any module here but those two
never pays the SDKs' import time (about 1.1 s and 1.8 s).
"""
