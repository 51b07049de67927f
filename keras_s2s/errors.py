"""Exceptions that carry a message meant for the user (the CLI prints them as one line)."""


class KerasS2SError(Exception):
    """Base class: the message says what was wrong, where, and what was expected."""


class ConfigError(KerasS2SError, ValueError):
    """A configuration field has an invalid value or type."""


class DataError(KerasS2SError, ValueError):
    """An input file or line is malformed."""


class VocabularyError(KerasS2SError, ValueError):
    """A vocabulary file is malformed or does not fit the model."""


class ExportError(KerasS2SError):
    """An export directory is missing, incomplete or corrupted."""


class InputError(KerasS2SError, ValueError):
    """A tensor fed to an exported graph has the wrong dtype, rank, size or values."""
