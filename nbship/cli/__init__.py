"""The command line: a thin typer layer over the library, with the single error boundary in ``main()``.

Command modules import only typer at module level; the library (and anything heavy) is imported inside the
command function, so ``nbship --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from nbship import __version__

app = typer.Typer(
    name="nbship",
    help="Take a Jupyter notebook to a production model service on Kubernetes.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"nbship {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    ci: bool = typer.Option(
        False,
        "--ci",
        help="CI mode (also when CI=true): no prompts or animations, --frozen lock, colour only if FORCE_COLOR.",
    ),
) -> None:
    """Take a Jupyter notebook to a production model service on Kubernetes.

    Example: nbship check churn.ipynb && nbship build churn.ipynb --push --repository registry.example.com/ml/churn
    """
    if ci:
        from nbship.cli._console import set_ci

        set_ci()


def _register() -> None:
    from nbship.cli import check, init, render

    app.command("init", no_args_is_help=True)(init.init)
    app.command("check", no_args_is_help=True)(check.check)
    app.command("render", no_args_is_help=True)(render.render)
    from nbship.cli import build, deploy, lock, serve

    app.command("lock", no_args_is_help=True)(lock.lock)
    app.command("serve", no_args_is_help=True)(serve.serve)
    app.command("build", no_args_is_help=True)(build.build)
    app.command("deploy", no_args_is_help=True)(deploy.deploy)
    app.command("status", no_args_is_help=True)(deploy.status)
    app.command("rollback", no_args_is_help=True)(deploy.rollback)


_register()


def main() -> None:
    """Run the CLI; every ``NbshipError`` becomes ``error: …`` on stderr and its exit code."""
    from nbship.errors import ExitCode, NbshipError

    try:
        returned = app(standalone_mode=False)
    except NbshipError as e:
        from nbship.cli._console import report_error

        report_error(e)
        sys.exit(int(e.exit_code))
    except typer.exceptions.TyperException as e:  # usage errors: typer's click prints them, exit 2
        e.show()  # type: ignore[attr-defined]
        sys.exit(int(getattr(e, "exit_code", ExitCode.USAGE)))
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as e:  # the boundary: anything else is a bug in nbship
        if os.environ.get("NBSHIP_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        print(
            f"internal error: {type(e).__name__}: {e} (a bug in nbship; NBSHIP_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.INTERNAL))
    sys.exit(returned if isinstance(returned, int) else 0)
