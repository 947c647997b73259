"""Writes a `docker save`-style archive (what `ctr images import` and `buildah pull` read).

Usage: docker-archive.py OUT.tar REPO:TAG CONFIG_JSON LAYER.tar...
CONFIG_JSON is the image configuration's "config" object (Entrypoint, User, Env, ...); the
layers are uncompressed tars, lowest first. Prints the image ID (the configuration's sha256).
"""
import hashlib
import io
import json
import sys
import tarfile


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    out, tag, config_json, layers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    diff_ids = [sha256_of(layer) for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": json.loads(config_json),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [
        {"Config": image_id + ".json", "RepoTags": [tag], "Layers": [d + "/layer.tar" for d in diff_ids]}
    ]

    def add_bytes(archive, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        add_bytes(archive, image_id + ".json", config_bytes)
        for diff_id, layer in zip(diff_ids, layers):
            archive.add(layer, arcname=diff_id + "/layer.tar")
        add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
    print(image_id)


main()
