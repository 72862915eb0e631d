"""Errors that carry a one-line message for the user: what is wrong and what to do."""


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message names the setting and the fix."""
