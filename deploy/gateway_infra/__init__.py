"""CDK constructs of the AI gateway's serverless data plane (one module per concern)."""
