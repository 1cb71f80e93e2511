"""Annotator pseudonyms: what the snapshot, the dataset and a release call a person.

A pseudonym is `annotator-` + 12 hex digits of HMAC-SHA256(key, dataset name + e-mail). The key is
a secret of the project's maintainers: it lives in `.builder/pseudonym.key` (mode 0600, git-ignored)
or in the `BUILDER_PSEUDONYM_KEY` variable, and never in git, the dataset or a release. Without
the key, guessing an e-mail does not give its pseudonym; with the same key, the same person keeps
the same name on any server and in every release.

Release 1.0.0 of the sample was pulled with the earlier, unkeyed scheme (`annotator-` + 8 hex
digits of a plain sha256); such names are still read, and told apart by their length.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from builder.errors import BuilderError

KEY_VARIABLE = "BUILDER_PSEUDONYM_KEY"
KEY_FILE = Path(".builder") / "pseudonym.key"
KEYED_SCHEME = "hmac-sha256/12"
LEGACY_SCHEME = "sha256-unkeyed/8"
PATTERN = re.compile(r"^annotator-(?:[0-9a-f]{12}|[0-9a-f]{8})$")
_SCHEME_OF_LENGTH = {12: KEYED_SCHEME, 8: LEGACY_SCHEME}
_KEY_SHAPE = re.compile(r"^[0-9a-f]{64}$")


class PseudonymKeyError(BuilderError):
    """The pseudonym key is missing where it must exist, or malformed."""


def keyed_pseudonym(key: bytes, dataset: str, email: str) -> str:
    """The pseudonym of `email` in `dataset` under `key` (the current scheme)."""
    message = f"{dataset}\x00{email.strip().lower()}".encode()
    return "annotator-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:12]


def legacy_pseudonym(dataset: str, email: str) -> str:
    """The unkeyed pseudonym of release 1.0.0 (reversible by guessing e-mails: read-only use)."""
    return "annotator-" + hashlib.sha256(f"{dataset}\x00{email.strip().lower()}".encode()).hexdigest()[:8]


def is_pseudonym(name: object) -> bool:
    """True for a name of either scheme (what the build lets into the dataset)."""
    return isinstance(name, str) and PATTERN.fullmatch(name) is not None  # `$` alone lets a final newline in


def scheme_of(names: Iterable[str]) -> str | None:
    """The scheme the given pseudonyms were made with; `mixed` if both occur, None if there are none."""
    schemes = {_SCHEME_OF_LENGTH.get(len(name) - len("annotator-"), "unknown") for name in names}
    if not schemes:
        return None
    return schemes.pop() if len(schemes) == 1 else "mixed"


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key (to tell keys apart without revealing them)."""
    return hmac.new(key, b"builder pseudonym key id", hashlib.sha256).hexdigest()[:12]


def key_path(root: Path) -> Path:
    return root / KEY_FILE


def _parse(text: str, where: str) -> bytes:
    text = text.strip()
    if not _KEY_SHAPE.match(text):
        raise PseudonymKeyError(f"{where}: a pseudonym key is 64 hex digits; this is not one (copy the whole key file)")
    return bytes.fromhex(text)


def load_key(root: Path) -> bytes | None:
    """The project's key: BUILDER_PSEUDONYM_KEY, else .builder/pseudonym.key; None if neither exists."""
    if os.environ.get(KEY_VARIABLE):
        return _parse(os.environ[KEY_VARIABLE], KEY_VARIABLE)
    path = key_path(root)
    if not path.is_file():
        return None
    return _parse(path.read_text(encoding="ascii", errors="replace"), str(path))


def create_key(root: Path) -> bytes:
    """Make a new random key in .builder/pseudonym.key (mode 0600); refuses to replace one.

    Written whole to a temporary file, then linked into place (which fails if a key appeared
    meanwhile): a full disk or a crash never leaves a partial key behind.
    """
    import tempfile

    from builder.jsonio import state_dir
    from builder.outputs import write_error

    path = key_path(root)
    key = secrets.token_bytes(32)
    try:
        state_dir(root)
        fd, tmp = tempfile.mkstemp(prefix=".pseudonym.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(key.hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
    except FileExistsError:
        raise PseudonymKeyError(f"{path} exists already; builder never replaces a pseudonym key") from None
    except OSError as exc:
        raise write_error(path, exc) from None
    return key


class Pseudonymizer:
    """E-mail -> pseudonym for one dataset under one key."""

    def __init__(self, key: bytes, dataset: str) -> None:
        self._key = key
        self.dataset = dataset
        self.key_id = key_id(key)

    def __call__(self, email: str) -> str:
        return keyed_pseudonym(self._key, self.dataset, email)

    def tag(self, text: str) -> str:
        """A keyed tag of `text` (a server and account id): finds an account's recorded name in the committed
        registry (builder/labelstudio/registry.py) without saying, to anyone lacking the key, whose it is."""
        return hmac.new(self._key, f"account\x00{self.dataset}\x00{text}".encode(), hashlib.sha256).hexdigest()[:24]

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(dataset={self.dataset!r}, key_id={self.key_id!r})"
