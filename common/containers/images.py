"""Building and verifying images (`invoke build`):

    base      docker/base/<flavour>.Dockerfile on BASE_IMAGE         mlperf-teach/base:<flavour>-<hash>
    workload  <suite>/<workload>/Dockerfile on that base              mlperf-teach/<workload>:<flavour>-<hash>

A tag is a content hash: of every file the build sends (Dockerfile, lock, common/, the workload's directory) and of
the image it builds on, so `build` with nothing changed finds its tag and builds nothing. The lock installs with
hash checking, by default from the host-side wheel cache (locks.py) served on 127.0.0.1 to the build, so the build
itself needs no index, CA or proxy.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import benchmark, provenance
from common.containers.engine import (DEFAULT_BASE_IMAGES, FLAVOURS, LABEL, NAMESPACE, OFFLINE_BASE_IMAGE, ROOT,
                                      DockerError, client, find_image, log, newest)
from common.containers.locks import INDEX_URL, canonical, fill_wheel_cache, lock_path, read_pins, wheel_server

# Docker's predefined build arguments: handed to the build, kept out of the cache key and the image history.
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY",
              "http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "all_proxy")


# --- build contexts and content hashes ------------------------------------------------------------------------------
def _files(directory: Path) -> list[tuple[str, Path]]:
    """(name in the build context, path) of every file under directory, as provenance.tree_hash sees them."""
    found = []
    for path in sorted(Path(directory).rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and not provenance.SKIP_DIRS.intersection(rel.parts) and path.suffix != ".pyc":
            found.append((path.relative_to(ROOT).as_posix(), path))
    return found


def base_context(flavour: str) -> list[tuple[str, Path]]:
    return [(name, path) for name, path in _files(ROOT / "docker" / "base")
            if name.endswith(".sh") or name.endswith(f"/{flavour}.Dockerfile")]


def served_training_dirs(directory: Path) -> list[Path]:
    """The training workload whose checkpoint an inference workload serves (its definition's
    checkpoint.training_benchmark): its image imports that workload's model and evaluation, so carries its code."""
    training = (benchmark.load(Path(directory)).get("checkpoint") or {}).get("training_benchmark")
    return [benchmark.workload_dir(training)] if training else []


def workload_context(directory: Path) -> list[tuple[str, Path]]:
    """What a workload image is built from: its directory (Dockerfile, locks, code), the directory of the training
    workload it serves (if any), common/, docker/build-ca/."""
    served = [entry for other in served_training_dirs(directory) for entry in _files(other)]
    return _files(Path(directory)) + served + _files(ROOT / "common") + _files(ROOT / "docker" / "build-ca")


def files_hash(files: list[tuple[str, Path]]) -> str:
    """sha256 over (name, executable bit, content sha256) of the context's files, in order."""
    digest = hashlib.sha256()
    for name, path in files:
        executable = os.access(path, os.X_OK)
        digest.update(f"{name}\0{int(executable)}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def image_tag(repository: str, flavour: str, files_sha256: str, parent_id: str) -> str:
    digest = hashlib.sha256(f"{files_sha256}\n{parent_id}\n".encode()).hexdigest()
    return f"{NAMESPACE}/{repository}:{flavour}-{digest[:16]}"


def context_tar(files: list[tuple[str, Path]], extra: dict[str, bytes] | None = None) -> io.BytesIO:
    """The build context as a deterministic tar (fixed owner and mtime), in memory: these contexts are kilobytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        entries = [(name, path.read_bytes(), os.access(path, os.X_OK)) for name, path in files]
        entries += [(name, data, False) for name, data in (extra or {}).items()]
        for name, data, executable in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


# --- building -------------------------------------------------------------------------------------------------------
@dataclass
class Built:
    tag: str
    image: object
    built: bool
    seconds: float = 0.0


def _stream_build(engine, files, dockerfile, tag, buildargs, labels, network_mode=None, no_cache=False,
                  extra=None) -> None:
    stream = engine.api.build(fileobj=context_tar(files, extra), custom_context=True, dockerfile=dockerfile, tag=tag,
                              buildargs=buildargs, labels=labels, network_mode=network_mode, nocache=no_cache,
                              rm=True, forcerm=True, pull=False, decode=True)
    for chunk in stream:
        if "stream" in chunk:
            sys.stdout.write(chunk["stream"])
            sys.stdout.flush()
        elif "error" in chunk:
            raise DockerError(f"building {tag} failed: {chunk['error'].strip()}")


def base_image(engine, flavour: str, source: str | None = None) -> Built:
    """The suite's base image for a flavour on source (default: the official image), built if missing."""
    if flavour not in FLAVOURS:
        raise DockerError(f"unknown flavour '{flavour}' (known: {', '.join(FLAVOURS)})")
    source = source or DEFAULT_BASE_IMAGES[flavour]
    parent = find_image(engine, source)
    if parent is None:
        log(f"pulling {source}")
        try:
            parent = engine.images.pull(source)
        except Exception as error:
            reason = (getattr(error, "explanation", None) or str(error)).splitlines()[0][:160]
            raise DockerError(f"base image {source} is not here and cannot be pulled ({reason}); without a registry, "
                              f"build the offline one (bash docker/offline_base.sh) and pass --base-image "
                              f"{OFFLINE_BASE_IMAGE}") from None
    files = base_context(flavour)
    tag = image_tag("base", flavour, files_hash(files), parent.id)
    image = find_image(engine, tag)
    if image is not None:
        return Built(tag, image, built=False)
    log(f"building base image {tag} on {source} ({parent.id[:19]})")
    start = time.monotonic()
    labels = {f"{LABEL}.base-image": source, f"{LABEL}.base-image-id": parent.id}  # role, flavour: Dockerfile
    _stream_build(engine, files, f"docker/base/{flavour}.Dockerfile", tag, {"BASE_IMAGE": source}, labels)
    return Built(tag, engine.images.get(tag), built=True, seconds=time.monotonic() - start)


def _ca_bundle(explicit: str | None) -> bytes | None:
    for candidate in (explicit, os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"),
                      os.environ.get("SSL_CERT_FILE")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise DockerError(f"CA bundle {path} does not exist")
            return path.read_bytes()
    return None


def build(name: str, flavour: str = "cpu", base: str | None = None, no_cache: bool = False,
          from_index: bool = False, ca_bundle: str | None = None, verify_after: bool = True) -> Built:
    """Build a workload's image unless its content tag exists already; streams the build output."""
    engine = client()
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(ROOT).as_posix()
    lock = lock_path(directory, flavour)
    for required in (directory / "Dockerfile", lock):
        if not required.is_file():
            hint = f"; run `invoke lock {name}`" if required == lock else ""
            raise DockerError(f"{required.relative_to(ROOT)} is missing{hint}")
    parent = base_image(engine, flavour, base)
    files = workload_context(directory)
    content = files_hash(files)
    tag = image_tag(name, flavour, content, parent.image.id)
    image = find_image(engine, tag)
    if image is not None and not no_cache:
        log(f"{tag} is up to date ({image.id[:19]}): nothing to build")
        return Built(tag, image, built=False)

    # LOCK, WHEELS_URL and PIP_INDEX_URL are declared by the base image's ONBUILD ARGs (docker/base/).
    buildargs = {"BASE_IMAGE": parent.tag, "LOCK": lock.name}
    labels = {f"{LABEL}.role": "workload", f"{LABEL}.workload": name, f"{LABEL}.flavour": flavour,
              f"{LABEL}.files-sha256": content, f"{LABEL}.base-image": base or DEFAULT_BASE_IMAGES[flavour]}
    start = time.monotonic()
    if from_index:  # pip inside the build reaches the index: the host's CA bundle and proxies go in with it
        buildargs["PIP_INDEX_URL"] = os.environ.get("PIP_INDEX_URL") or INDEX_URL
        buildargs.update({k: os.environ[k] for k in PROXY_ARGS if os.environ.get(k)})
        ca = _ca_bundle(ca_bundle)
        extra = {"docker/build-ca/extra-ca.pem": ca} if ca else None
        log(f"building {tag} from {buildargs['PIP_INDEX_URL']}" + (" with an extra CA bundle" if ca else ""))
        _stream_build(engine, files, f"{rel}/Dockerfile", tag, buildargs, labels, no_cache=no_cache, extra=extra)
    else:
        fill_wheel_cache(lock)
        with wheel_server() as url:
            buildargs["WHEELS_URL"] = url
            log(f"building {tag} (wheels from {url})")
            _stream_build(engine, files, f"{rel}/Dockerfile", tag, buildargs, labels, network_mode="host",
                          no_cache=no_cache)
    image = engine.images.get(tag)
    seconds = time.monotonic() - start
    log(f"built {tag} ({image.id[:19]}, {image.attrs['Size'] / 1e9:.2f} GB) in {seconds:.0f} s")
    if verify_after:
        verify(tag, lock, engine)
    return Built(tag, image, built=True, seconds=seconds)


def installed_packages(engine, image) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    output = engine.containers.run(image, entrypoint=["python", "-c", code], command=[], network_mode="none",
                                   remove=True, stdout=True, stderr=False)
    return {canonical(k): v for k, v in json.loads(output).items()}


def verify(tag: str, lock: Path | None = None, engine=None) -> None:
    """The image's Python packages are exactly the lock's pins (pip itself aside), or DockerError."""
    engine = engine or client()
    image = find_image(engine, tag)
    if image is None:
        raise DockerError(f"no image {tag}")
    if lock is None:
        directory = Path(benchmark.load(image.labels[f"{LABEL}.workload"])["directory"])
        lock = lock_path(directory, image.labels[f"{LABEL}.flavour"])
    pins, installed = read_pins(lock), installed_packages(engine, image.id)
    problems = [f"{n}=={v} (image: {installed.get(n, 'missing')})" for n, v in sorted(pins.items())
                if installed.get(n) != v]
    problems += [f"{n}=={v} (not in the lock)" for n, v in sorted(installed.items()) if n not in pins and n != "pip"]
    if problems:
        raise DockerError(f"{tag} does not match {lock.relative_to(ROOT)}: {', '.join(problems)}")
    log(f"verified: the {len(pins)} packages in {tag} are exactly the pins of {lock.relative_to(ROOT)}")


def current_image(engine, name: str, flavour: str):
    """The workload's image for its current files, built now if there is none, on the base image its previous
    build used (so a site that builds on the offline base keeps doing so)."""
    content = files_hash(workload_context(Path(benchmark.load(name)["directory"])))
    image = newest(engine, f"{LABEL}.workload={name}", f"{LABEL}.flavour={flavour}", f"{LABEL}.files-sha256={content}")
    if image is None:
        previous = newest(engine, f"{LABEL}.workload={name}", f"{LABEL}.flavour={flavour}")
        base = previous.labels.get(f"{LABEL}.base-image") if previous is not None else None
        log(f"no {flavour} image of the current {name} files: building it" + (f" on {base}" if base else ""))
        image = build(name, flavour, base=base).image
    return image
