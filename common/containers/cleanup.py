"""`invoke clean`: the suite's stopped run containers and outdated images (--everything: all of them)."""
from __future__ import annotations

import shutil

from common import benchmark
from common.containers.engine import LABEL, client, log
from common.containers.images import files_hash, workload_context
from common.containers.locks import WHEEL_CACHE


def clean(name: str | None = None, everything: bool = False) -> None:
    """Remove this suite's stopped run containers and its outdated workload images (built from files that have
    changed since), of one workload or all. everything: all its workload images; with no workload named, also
    the base images, the offline base and the host-side wheel cache."""
    import docker

    engine = client()
    for container in engine.containers.list(all=True, filters={"label": f"{LABEL}.role=run", "status": "exited"}):
        container.remove()
        log(f"removed container {container.short_id}")
    known, current = benchmark.workload_dirs(), {}

    def outdated(image) -> bool:
        workload = image.labels.get(f"{LABEL}.workload")
        if workload not in known:
            return True
        if workload not in current:
            current[workload] = files_hash(workload_context(known[workload]))
        return image.labels.get(f"{LABEL}.files-sha256") != current[workload]

    doomed = [image for image in engine.images.list(filters={"label": f"{LABEL}.role=workload"})
              if (name is None or image.labels.get(f"{LABEL}.workload") == name) and (everything or outdated(image))]
    if everything and name is None:
        doomed += engine.images.list(filters={"label": f"{LABEL}.role=base"})
        doomed += engine.images.list(filters={"label": f"{LABEL}.role=offline-base"})
    for image in doomed:
        for reference in image.tags or [image.id]:
            try:
                engine.images.remove(reference)
                log(f"removed {reference}")
            except docker.errors.APIError as error:
                log(f"kept {reference}: {error.explanation}")
    if not doomed:
        log("no images to remove" + ("" if everything else " (current images are kept; --everything removes them)"))
    if everything and name is None and WHEEL_CACHE.is_dir():
        shutil.rmtree(WHEEL_CACHE)
        log(f"removed the wheel cache {WHEEL_CACHE}")
