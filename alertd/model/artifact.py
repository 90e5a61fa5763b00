"""The model on disk: a joblib file plus ``manifest.json``, verified before unpickling.

joblib files are pickles and can run code when loaded, so the file's sha256 must match
the manifest before ``joblib.load`` is called. The file holds plain numbers, strings and
NumPy arrays (format 3), not scikit-learn objects, so it loads the same whatever
scikit-learn is installed; the manifest still records the versions that built it, and
``alertd train`` rebuilds it byte for byte only with those.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from alertd.errors import ModelError
from alertd.model.classifier import LabelWeights, RelevanceModel, char_space, word_space

MANIFEST = "manifest.json"
FORMAT = 3  # 2: per-label Platt calibration; 3: plain numbers instead of scikit-learn objects


@dataclass(frozen=True)
class Manifest:
    model_id: str
    file: str
    sha256: str
    labels: list[str]
    thresholds: dict[str, float]
    training_data_sha256: str
    library_versions: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT


def library_versions() -> dict[str, str]:
    """The versions that fit and wrote the model, read from package metadata (importing
    scikit-learn just to ask would cost the daemon 65 MB)."""
    return {name: importlib.metadata.version(name) for name in ("scikit-learn", "numpy", "scipy", "joblib")}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_dir() -> Path:
    """The shipped models/ directory: in the working directory, else beside the package source."""
    here = Path("models")
    if (here / MANIFEST).exists():
        return here
    return Path(__file__).resolve().parents[2] / "models"


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}; set model.path or run 'alertd train'")
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read model manifest {path}: {exc}")
    try:
        manifest = Manifest(**raw)
    except TypeError as exc:
        raise ModelError(f"model manifest {path} is not in the expected shape: {exc}")
    if manifest.format != FORMAT:
        raise ModelError(f"model manifest {path} has format {manifest.format}; this alertd reads format {FORMAT}")
    return manifest


def load_model(model_dir: Path | None = None) -> RelevanceModel:
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    manifest = read_manifest(model_dir)
    model_file = model_dir / manifest.file
    if Path(manifest.file).name != manifest.file:
        raise ModelError(f"model manifest names {manifest.file!r}; the model file must sit beside the manifest")
    try:
        actual = sha256_file(model_file)
    except OSError as exc:
        raise ModelError(f"cannot read model file {model_file}: {exc.strerror}")
    if actual != manifest.sha256:
        raise ModelError(
            f"model file {model_file} does not match its manifest (sha256 {actual[:12]}…, expected {manifest.sha256[:12]}…); "
            "it was changed or corrupted: restore it or retrain with 'alertd train'. Refusing to load it."
        )
    try:
        model = _from_bundle(joblib.load(model_file), manifest)
    except ModelError:
        raise
    except Exception as exc:  # a verified file that still fails to unpickle is a broken build
        raise ModelError(f"model file {model_file} passed its checksum but cannot be loaded: {type(exc).__name__}: {exc}")
    if list(model.labels) != manifest.labels:
        raise ModelError(f"model file has labels {list(model.labels)}, manifest says {manifest.labels}")
    return model


def _from_bundle(bundle: dict[str, Any], manifest: Manifest) -> RelevanceModel:
    words = word_space(bundle["word_terms"].split("\n"), bundle["word_idf"])
    chars = char_space(bundle["char_terms"].split("\n"), bundle["char_idf"])
    weights = {
        label: LabelWeights(np.asarray(w["words"], dtype=np.float64), np.asarray(w["chars"], dtype=np.float64), float(w["intercept"]))
        for label, w in bundle["weights"].items()
    }
    for label, w in weights.items():
        if (len(w.words), len(w.chars)) != (len(words), len(chars)) or len(words.idf) != len(words) or len(chars.idf) != len(chars):
            raise ModelError(f"model {manifest.model_id} is inconsistent: {label} has {len(w.words)}+{len(w.chars)} weights "
                             f"for {len(words)}+{len(chars)} terms; retrain with 'alertd train'")
    return RelevanceModel(
        words, chars, weights, thresholds=dict(manifest.thresholds),
        calibration={label: (float(a), float(b)) for label, (a, b) in bundle["calibration"].items()}, model_id=manifest.model_id,
    )


def save_model(model: RelevanceModel, model_dir: Path, manifest_fields: dict[str, Any]) -> Manifest:
    """Write the joblib file, then the manifest naming its checksum (manifest last, so a
    crash in between leaves a mismatch that loading refuses rather than a silent mix)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    file_name = "alertd-model.joblib"
    path = model_dir / file_name
    for space in (model.words, model.chars):
        if any("\n" in term for term in space.terms):
            raise ValueError("a term contains a line break; terms are stored one per line")
    bundle = {  # terms as one string each: one object to unpickle instead of 100,000
        "word_terms": "\n".join(model.words.terms),
        "word_idf": model.words.idf,
        "char_terms": "\n".join(model.chars.terms),
        "char_idf": model.chars.idf,
        "weights": {label: {"words": w.words, "chars": w.chars, "intercept": w.intercept} for label, w in model.weights.items()},
        "calibration": model.calibration,
    }
    joblib.dump(bundle, path, compress=3)
    digest = sha256_file(path)
    manifest = Manifest(
        model_id=f"alertd-tfidf-lr-{digest[:12]}",
        file=file_name,
        sha256=digest,
        labels=list(model.labels),
        thresholds={k: round(v, 4) for k, v in model.thresholds.items()},
        library_versions=library_versions(),
        **manifest_fields,
    )
    tmp = model_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(model_dir / MANIFEST)
    model.model_id = manifest.model_id
    return manifest
