"""Errors of the ingestion."""


class DeliveryRefused(Exception):
    """The delivery cannot be loaded; the message names the file and the problem. Nothing was changed."""
