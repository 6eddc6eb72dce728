"""Find and read the manifests a probe test deploys: files, YAML text or plain dicts.

:func:`load_manifests` turns a manifest into :class:`ManifestObject` objects, each knowing the file
and the document it came from (counted from 1, as a reader counts the ``---`` separators), so that
every error can name them. YAML is read with the safe loader, refusing a key given twice as kubectl
does. Nothing here talks to a cluster: the only I/O is reading files (and standard input).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_probes.errors import DeployError

# The package's own directory (this module lives one level below it, in deploy/).
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _find_manifests_dir() -> Path:
    """Return the directory holding the seed manifests.

    An installed wheel carries them as ``pytest_probes/manifests``; a source checkout keeps them in
    ``manifests/`` at the repository root, beside ``pyproject.toml``.
    """
    packaged = _PACKAGE_DIR / "manifests"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / "manifests"
    if checkout.is_dir() and (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return checkout
    return packaged


MANIFESTS_DIR: Path = _find_manifests_dir()
"""Where the seed manifests live; searched last when a manifest is named by a relative path."""

ManifestSource = str | os.PathLike[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]]
"""What :func:`load_manifests` accepts: a path, YAML text, one object or a list of objects."""


@dataclass(frozen=True)
class ManifestObject:
    """One Kubernetes object read from a manifest, with where it came from.

    Attributes:
        doc: The object as a dict (``apiVersion``, ``kind``, ``metadata``, ...).
        source: The file it came from (relative to the working directory where possible), or
            ``<text>``, ``<dict>`` or ``<list>``.
        index: The document number in the source, counted from 1 (empty documents count).
        item: The item number inside a ``kind: List`` document, counted from 1, else ``None``.
    """

    doc: dict[str, Any]
    source: str
    index: int
    item: int | None = None

    @property
    def kind(self) -> str:
        """The object's ``kind``."""
        return str(self.doc.get("kind") or "")

    @property
    def api_version(self) -> str:
        """The object's ``apiVersion``."""
        return str(self.doc.get("apiVersion") or "")

    @property
    def name(self) -> str:
        """The object's ``metadata.name`` (``""`` if it has none)."""
        meta = self.doc.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""

    @property
    def where(self) -> str:
        """Where the object was read, e.g. ``manifests/x.yaml document 2``."""
        place = f"{self.source} document {self.index}"
        return place if self.item is None else f"{place} item {self.item}"

    def describe(self) -> str:
        """Return ``<where>: <kind> <name>`` for messages."""
        return f"{self.where}: {self.kind} {self.name or '(unnamed)'}"

    def error(self, message: str) -> DeployError:
        """Return a :class:`DeployError` about this object, prefixed with :meth:`describe`."""
        return DeployError(
            f"{self.describe()}: {message}",
            source=self.source,
            index=self.index,
            kind=self.kind or None,
            name=self.name or None,
        )


def search_dirs(base_dirs: Sequence[Path | str] = ()) -> list[Path]:
    """Return the directories a relative manifest path is looked up in, in order.

    The working directory comes first, then ``base_dirs``, then :data:`MANIFESTS_DIR`.
    """
    dirs: list[Path] = []
    for candidate in (Path.cwd(), *(Path(d).absolute() for d in base_dirs), MANIFESTS_DIR):
        if candidate not in dirs:
            dirs.append(candidate)
    return dirs


def find_manifest(name: str | os.PathLike[str], *, base_dirs: Sequence[Path | str] = ()) -> Path:
    """Find a manifest file by name.

    An absolute path is used as it is. A relative one is tried against the working directory,
    then each of ``base_dirs``, then :data:`MANIFESTS_DIR`. A name without a suffix also matches
    ``<name>.yaml`` and ``<name>.yml``.

    Args:
        name: The file name or path.
        base_dirs: Extra directories to search after the working directory.

    Returns:
        The path of the file found.

    Raises:
        DeployError: No such file; the message lists every place that was tried.
    """
    found, tried = _search(Path(name), base_dirs)
    if found is not None:
        return found
    folders = [p for p in tried if _is_dir(p)]
    if folders:
        raise DeployError(
            f"manifest {os.fspath(name)!r}: {folders[0]} is a directory, not a manifest file; "
            "name a YAML file in it, or load each of its files",
            source=os.fspath(name),
        )
    raise DeployError(
        f"manifest {os.fspath(name)!r} not found (not a manifest file); looked for "
        + ", ".join(str(p) for p in tried)
        + ". Pass an absolute path, put the file in one of those directories, or add its "
        "directory to base_dirs",
        source=os.fspath(name),
    )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _search(name: Path, base_dirs: Sequence[Path | str]) -> tuple[Path | None, list[Path]]:
    names = [name]
    if not name.suffix:
        names += [name.with_name(name.name + ".yaml"), name.with_name(name.name + ".yml")]
    if name.is_absolute():
        candidates = names
    else:
        candidates = [d / n for d in search_dirs(base_dirs) for n in names]
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate, candidates
        except (OSError, ValueError):  # a name too long, or with a NUL byte
            continue
    return None, candidates


def load_manifests(
    source: ManifestSource, *, base_dirs: Sequence[Path | str] = ()
) -> list[ManifestObject]:
    """Read Kubernetes objects from a file, YAML text, a dict or a list of dicts.

    A ``str`` that contains a newline is YAML text; otherwise it is a path looked up as
    :func:`find_manifest` does, unless no such file exists and it contains ``:`` (then it is
    one-line YAML text). Multi-document YAML is split, empty documents are skipped and the items of
    ``kind: List`` documents become objects of their own. The input is never modified: each object
    holds its own copy.

    Args:
        source: The manifest.
        base_dirs: Extra directories to search for a relative path.

    Returns:
        The objects in order.

    Raises:
        DeployError: The file is missing or unreadable, the YAML is invalid (the message gives the
            line and column), a document is not an object with ``apiVersion`` and ``kind``, or the
            source holds no object at all.
    """
    if isinstance(source, Mapping):
        return _objects_from_docs([source], "<dict>")
    if isinstance(source, os.PathLike):
        return _load_file(find_manifest(source, base_dirs=base_dirs))
    if isinstance(source, str):
        if "\n" in source:
            return _objects_from_docs(_parse_yaml(source, "<text>"), "<text>")
        found, _ = _search(Path(source), base_dirs)
        if found is not None:
            return _load_file(found)
        if ":" in source:
            docs = _parse_yaml(source, "<text>")
            # "name: value" is YAML text; "dir/x:y.yaml" (no space) is one string: a path.
            if any(isinstance(doc, Mapping) for doc in docs):
                return _objects_from_docs(docs, "<text>")
        find_manifest(source, base_dirs=base_dirs)  # raises, listing where it looked
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return _objects_from_docs(list(source), "<list>")
    raise DeployError(
        f"cannot read manifests from a {type(source).__name__}; pass a path, YAML text, a dict "
        "or a list of dicts"
    )


def load_manifest_text(text: str, label: str) -> list[ManifestObject]:
    """Read the objects of YAML (or JSON) text, e.g. Helm or kustomize output on standard input.

    Raises:
        DeployError: As :func:`load_manifests`, naming ``label`` as the source.
    """
    return _objects_from_docs(_parse_yaml(text, label), label)


def load_manifest_paths(paths: Sequence[Path | str]) -> list[ManifestObject]:
    """Read every object of files, directories and ``-`` (standard input).

    A directory gives its ``*.yaml``, ``*.yml`` and ``*.json`` files, and those below it, in
    name order.

    Raises:
        DeployError: A path does not exist, a directory holds no manifest, or a file is invalid.
    """
    import sys

    objects: list[ManifestObject] = []
    for given in paths:
        if str(given) == "-":
            objects += load_manifest_text(sys.stdin.read(), "<stdin>")
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
            if not files:
                raise DeployError(f"{path}: the directory holds no *.yaml, *.yml or *.json file")
            for file in files:
                objects += _load_file(file)
        elif path.is_file():
            objects += _load_file(path)
        else:
            raise DeployError(f"{path}: no such file or directory; give manifest files, "
                              "directories, or - for standard input", source=str(path))
    return objects


def _display_name(path: Path) -> str:
    resolved = path.resolve()
    for root, prefix in ((Path.cwd().resolve(), ""), (MANIFESTS_DIR.resolve(), "manifests/")):
        try:
            return prefix + str(resolved.relative_to(root))
        except ValueError:
            continue
    return str(resolved)


def _load_file(path: Path) -> list[ManifestObject]:
    label = _display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeployError(
            f"{label}: cannot read the manifest ({err}); check the file's permissions and that it "
            "is UTF-8 text",
            source=label,
        ) from err
    return _objects_from_docs(_parse_yaml(text, label), label)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last value silently (a second ``livenessProbe:`` would win unseen); kubectl's
    decoder refuses the file (``mapping key ... already defined``), and so does this.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:
                continue  # an unhashable key: the base class says so
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {first + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, label: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_UniqueKeyLoader))  # a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        index = _document_at(text, mark.line) if mark else None
        where = (
            f" in document {index} at line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else ""
        )
        what = err.problem or str(err)
        if err.context:
            context = err.context_mark
            since = f" at line {context.line + 1}, column {context.column + 1}" if context else ""
            what += f" ({err.context}{since})"
        fix = ("Remove one of them (kubectl refuses the file too)" if "duplicate key" in what
               else "Fix the syntax there (indentation, a missing ':' or closing quote, a tab "
               "used for indentation) and separate documents with '---'")
        raise DeployError(
            f"{label}: invalid YAML{where}: {what}. {fix}",
            source=label,
            index=index,
        ) from err
    except yaml.YAMLError as err:
        raise DeployError(
            f"{label}: invalid YAML: {err}. Fix the syntax and separate documents with '---'",
            source=label,
        ) from err


def _document_at(text: str, line: int) -> int:
    """Return the number (from 1) of the YAML document that holds the 0-based ``line``."""
    index = 0
    for current in text.splitlines()[: line + 1]:
        if current.startswith("---"):
            index += 1
        elif index == 0 and current.strip() and not current.lstrip().startswith(("#", "%")):
            index = 1
    return max(index, 1)


def _objects_from_docs(docs: Sequence[Any], label: str) -> list[ManifestObject]:
    objects: list[ManifestObject] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        _check_object(doc, label, index, None)
        items = doc.get("items")
        if str(doc.get("kind")).endswith("List") and isinstance(items, list):
            for item_no, item in enumerate(items, start=1):
                _check_object(item, label, index, item_no)
                objects.append(ManifestObject(copy.deepcopy(dict(item)), label, index, item_no))
        else:
            objects.append(ManifestObject(copy.deepcopy(dict(doc)), label, index))
    if not objects:
        raise DeployError(
            f"{label} holds no Kubernetes objects; give it at least one document with apiVersion "
            "and kind",
            source=label,
        )
    return objects


def _check_object(doc: Any, label: str, index: int, item: int | None) -> None:
    where = f"{label} document {index}" + ("" if item is None else f" item {item}")
    if not isinstance(doc, Mapping):
        raise DeployError(
            f"{where} is a {type(doc).__name__}, not an object; each document must be a mapping "
            "with apiVersion, kind and metadata",
            source=label,
            index=index,
        )
    missing = [key for key in ("apiVersion", "kind") if not doc.get(key)]
    if missing:
        raise DeployError(
            f"{where} has no {' or '.join(missing)}; every Kubernetes object needs both (e.g. "
            "apiVersion: v1, kind: Pod)",
            source=label,
            index=index,
            kind=str(doc.get("kind") or "") or None,
        )
    if "metadata" in doc and not isinstance(doc["metadata"], Mapping):
        raise DeployError(
            f"{where}: metadata must be a mapping (name, labels, ...), not a "
            f"{type(doc['metadata']).__name__}",
            source=label,
            index=index,
            kind=str(doc["kind"]),
        )
