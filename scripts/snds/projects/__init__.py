"""Research projects: definitions (`projects/<ID>.yml`), their check and, later, their build."""
