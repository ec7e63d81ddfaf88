"""The AWS twin: the synthesized template made concrete on moto, with its IAM enforced."""
