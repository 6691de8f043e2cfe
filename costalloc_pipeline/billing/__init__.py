"""What storage and S3 requests cost: the price table of the configuration, and estimates from it."""
