"""``nbship deploy``, ``nbship status``, ``nbship rollback``: a build context's overlay on a Kubernetes cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nbship.cli._options import ConfigOption, FrozenOption, Output, OutputOption, Overlay

if TYPE_CHECKING:
    from nbship.deploy.apply import Rendered, StatusReport, Target
    from nbship.deploy.history import RevisionProvenance
    from nbship.deploy.kubectl import KubectlClient
    from nbship.deploy.rollout import RolloutProgress
    from nbship.errors import RolloutInterruptedError

ContextDir = typer.Argument(..., help="The build context (nbship render --out DIR).", show_default=False)
EnvOption = typer.Option(Overlay.staging, "--env", "-e", help="The overlay: staging or production.")
NamespaceOption = typer.Option(None, "--namespace", "-n", help="Override the overlay's namespace.", show_default=False)
KubeContextOption = typer.Option(None, "--context", help="kubeconfig context (default: the current one).",
                                 show_default=False)
TimeoutOption = typer.Option(
    None, "--timeout", show_default=False,
    help="Seconds to wait for the rollout (default: the Deployment's progressDeadlineSeconds × its rolling-update "
         "steps, replicas / maxSurge).",
)


def _connect(kube_context: str | None) -> KubectlClient:
    from nbship.deploy.kubectl import KubectlClient

    client = KubectlClient(kube_context)
    client.check()
    return client


def _progress(progress: RolloutProgress) -> None:
    from nbship.cli._console import console

    console().print(f"rollout: {progress.message}", markup=False)


def _interrupted(e: RolloutInterruptedError, command: str, output: Output) -> RolloutInterruptedError:
    """Ctrl-C during the wait: say which revision is rolling out and what to run next; exit 130."""
    from nbship.cli._console import print_json

    steps = [f"see where it stands: nbship status {command}"]
    if e.previous is not None:
        steps.append(f"go back to revision {e.previous}: nbship rollback {command}")
    e.hint = "; ".join(steps)
    if output is Output.json:
        print_json({"ok": False, "interrupted": True, "deployment": e.deployment, "namespace": e.namespace,
                    "revision": e.revision, "previous_revision": e.previous, "error": e.message})
    return e


def _command(context_dir: Path, env: str, namespace: str | None, kube_context: str | None) -> str:
    """The arguments that name this Deployment again, for the commands nbship suggests."""
    import shlex

    words = [str(context_dir), "--env", env] + (["-n", namespace] if namespace else []) + \
        (["--context", kube_context] if kube_context else [])
    return " ".join(shlex.quote(w) for w in words)


def _locate(client: KubectlClient, target: Target) -> Rendered:
    from nbship.deploy.apply import render_target

    return render_target(client, target)


def deploy(
    context_dir: Path = typer.Argument(
        ..., show_default=False,
        help="The build context (nbship render --out DIR), or a notebook: rendered, built, smoke-tested, pushed "
        "(reusing the image that has its content tag), then deployed.",
    ),
    env: Overlay = EnvOption,
    namespace: str | None = NamespaceOption,
    kube_context: str | None = KubeContextOption,
    image: str | None = typer.Option(
        None, "--image", help="Deploy this image instead of the build record's.", show_default=False
    ),
    record: Path | None = typer.Option(
        None, "--record", show_default=False,
        help="The build record (default: nbship-build.json in the build context, then in the working directory).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change (server-side), apply nothing."),
    no_rollback: bool = typer.Option(False, "--no-rollback", help="Leave a failed rollout in place."),
    force_conflicts: bool = typer.Option(False, "--force-conflicts", help="Take over fields other tools manage."),
    timeout: float = TimeoutOption,
    output: Output = OutputOption,
    repository: str | None = typer.Option(
        None, "--repository", show_default=False,
        help="With a notebook: the image repository to push to (default: repository in nbship.yaml).",
    ),
    out: Path = typer.Option(Path("build"), "--out", "-o", help="With a notebook: where to render the build context."),
    config: Path | None = ConfigOption,
    frozen: bool | None = FrozenOption,
) -> None:
    """Apply the overlay with server-side apply, wait for the rollout, roll back if it fails (exit 5).

    Given a notebook instead of a build context, first render, build, smoke-test and push it (nbship build).

    Example: nbship deploy build/churn --env staging
    """
    from nbship.cli._console import console, print_json
    from nbship.cli._github import append_summary, deploy_summary
    from nbship.deploy.apply import RolloutFailedError, Target
    from nbship.deploy.apply import deploy as run_deploy
    from nbship.deploy.layer import choose_image
    from nbship.errors import RolloutInterruptedError

    if context_dir.is_file():  # a notebook: the whole path in one command
        context_dir, record = _build_notebook(context_dir, out, repository, config, frozen, push=not dry_run)
    choice = choose_image(context_dir, image, record)
    if choice.reference.digest is None:
        console().print(f"warning: deploying {choice.reference} by tag: the cluster pulls whatever the tag names "
                        "when a pod starts (nbship build --push records a digest)", markup=False, style="yellow")
    client = _connect(kube_context)
    target = Target(context_dir, env.value, namespace)
    try:
        result = run_deploy(client, target, choice, dry_run=dry_run, rollback=not no_rollback,
                            force_conflicts=force_conflicts, timeout=timeout, on_progress=_progress)
    except RolloutInterruptedError as e:
        raise _interrupted(e, _command(context_dir, env.value, namespace, kube_context), output) from None
    except RolloutFailedError as e:
        console().print(e.diagnostics, markup=False, soft_wrap=True)
        append_summary(deploy_summary({"error": e.message, "rolled_back_to": e.rolled_back_to}, ok=False))
        if output is Output.json:
            print_json({"ok": False, "error": e.message, "rolled_back_to": e.rolled_back_to,
                        "diagnostics": e.diagnostics})
        raise
    if not dry_run:
        append_summary(deploy_summary(result.as_json(), ok=True))
    if output is Output.json:
        print_json({"ok": True, **result.as_json()})
    elif dry_run:
        print(result.diff or "no changes", end="" if result.diff else "\n")
    else:
        console().print(f"deployed {result.image} to deployment/{result.deployment} in {result.namespace} "
                        f"(revision {result.revision}, {result.seconds:.0f} s)", markup=False)


def _build_notebook(
    notebook: Path, out: Path, repository: str | None, config: Path | None, frozen: bool | None, *, push: bool
) -> tuple[Path, Path]:
    """Render, build, smoke-test and push ``notebook`` into ``out``; the build context and its record.

    Raises:
        UsageError: nothing names a registry to push to.
        NbshipError: as ``nbship build``.
    """
    import os

    from nbship.cli.build import build_and_record
    from nbship.config import load_config
    from nbship.errors import UsageError
    from nbship.image.build import BuildOptions
    from nbship.spec import repository_choice

    chosen = repository_choice(repository, os.environ)
    if push and chosen is None and load_config(notebook, config)[0].repository is None:
        raise UsageError(
            f"nbship deploy {notebook.name} pushes the image for the cluster to pull: name a registry",
            hint="--repository REGISTRY/NAME, NBSHIP_REPOSITORY, or repository: in nbship.yaml",
        )
    _, record = build_and_record(notebook, out, BuildOptions(push=push), config=config, frozen=frozen,
                                 repository=repository)
    return out, record


def _show(report: StatusReport, output: Output, revisions: tuple[RevisionProvenance, ...] = ()) -> None:
    from nbship.cli._console import print_json
    from nbship.deploy.history import history_table

    if output is Output.json:
        print_json({**report.as_json(), **({"revisions": [r.as_json() for r in revisions]} if revisions else {})})
        return
    print(f"deployment/{report.deployment} in {report.namespace}: revision {report.revision}")
    print(f"image: {report.image}")
    print(f"replicas: {report.ready}/{report.desired} ready, {report.updated} updated, {report.available} available")
    if report.hpa is not None:
        print(f"autoscaler: {report.hpa['current']} current, {report.hpa['desired']} desired "
              f"(min {report.hpa['min']}, max {report.hpa['max']})")
    if revisions:
        print("revisions (* = current; notebook, lock and commit by their first 12 characters, image by digest):")
        for line in history_table(revisions):
            print("  " + line)


def status(
    context_dir: Path = ContextDir,
    env: Overlay = EnvOption,
    namespace: str | None = NamespaceOption,
    kube_context: str | None = KubeContextOption,
    output: Output = OutputOption,
) -> None:
    """Show the deployed revision, image, ready replicas, the autoscaler's state, and each revision's provenance.

    Example: nbship status build/churn --env production --output json
    """
    from nbship.deploy.apply import Target, rollout_status
    from nbship.deploy.history import revision_history

    client = _connect(kube_context)
    rendered = _locate(client, Target(context_dir, env.value, namespace))
    report = rollout_status(client, rendered.namespace, rendered.deployment)
    live = client.get("deployment", rendered.deployment, rendered.namespace)
    _show(report, output, revision_history(client, rendered.namespace, live) if live else ())


def rollback(
    context_dir: Path = ContextDir,
    env: Overlay = EnvOption,
    namespace: str | None = NamespaceOption,
    kube_context: str | None = KubeContextOption,
    timeout: float = TimeoutOption,
    output: Output = OutputOption,
) -> None:
    """Go back one revision and wait until it is available.

    Example: nbship rollback build/churn --env staging
    """
    from nbship.deploy.apply import Target
    from nbship.deploy.apply import rollback as run_rollback
    from nbship.errors import RolloutInterruptedError

    client = _connect(kube_context)
    rendered = _locate(client, Target(context_dir, env.value, namespace))
    try:
        report = run_rollback(client, rendered, timeout=timeout, on_progress=_progress)
    except RolloutInterruptedError as e:
        raise _interrupted(e, _command(context_dir, env.value, namespace, kube_context), output) from None
    _show(report, output)
