"""The one image reference: ``[registry/]path[:tag][@digest]``, parsed and printed in one place.

Build makes them (the content tag, ``--tag``), push adds the digest, the build record stores them, the rendered
Deployment names a placeholder and the deploy layer pins the real one by digest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ImageRef:
    repository: str  # host[:port]/path/name, as Docker and kustomize write it
    tag: str | None = None
    digest: str | None = None  # sha256:…

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """``host:5000/ml/churn:1.0-abc@sha256:…`` → its parts; the colon of a registry port is not a tag."""
        name, _, digest = text.partition("@")
        repository, colon, tag = name.rpartition(":")
        if not colon or "/" in tag or not repository:  # no tag: "host:5000/name" or "name"
            return cls(name, None, digest or None)
        return cls(repository, tag, digest or None)

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def pinned(self) -> str:
        """By digest when known (what the cluster must pull), else by tag."""
        return f"{self.repository}@{self.digest}" if self.digest else str(self)

    @property
    def registry(self) -> str:
        """The registry host: the first path part when it looks like a host, else Docker Hub."""
        first, slash, _ = self.repository.partition("/")
        return first if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"

    def with_tag(self, tag: str) -> ImageRef:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=digest)
