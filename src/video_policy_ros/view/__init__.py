"""The operator's browser view: what the policy sees and predicts, and what the controller does with it."""
