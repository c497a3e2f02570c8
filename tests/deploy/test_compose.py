"""docker-compose.yml cannot run here (no Docker engine), so it is checked for structure: every
service the app needs, health checks, volumes, and that the app's environment is exactly the
settings the code reads (declared in pipeline/settings.py, not listed here by hand)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("db", "pipeline", "app")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_vars_read(paths) -> set[str]:
    """Names in os.environ.get("X") / os.getenv("X") / os.environ["X"] / os.environ.setdefault."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Call) and node.args:
                func = ast.unparse(node.func)
                if func in ("os.environ.get", "os.getenv", "os.environ.setdefault"):
                    target = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                target = node.slice
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                names.add(target.value)
    return names


def code_files():
    return [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts]


def settings_the_app_reads() -> set[str]:
    """The variables pipeline/settings.py marks as the deployment's (compose=True)."""
    from pipeline.settings import env_vars

    return {var.name for var in env_vars() if var.compose}


def declared_settings() -> set[str]:
    from pipeline.settings import ENV_NAMES

    return set(ENV_NAMES)


def test_the_scan_finds_the_known_settings():
    # Guards the scanner itself: if it found nothing, the checks below would pass vacuously.
    assert {"RLAIF_DATABASE_URL", "RLAIF_HOME", "ARGILLA_API_URL", "ARGILLA_API_KEY"} <= (
        settings_the_app_reads()
    )


def test_every_service_the_app_needs(compose):
    services = compose["services"]
    assert {
        "postgres",
        "redis",
        "elasticsearch",
        "argilla",
        "argilla-worker",
        "migrate",
        "app",
    } <= set(services)
    assert services["argilla"]["image"] == "argilla/argilla-server:v2.8.0"
    assert services["migrate"]["command"] == ["rlaif", "init"]
    assert services["migrate"]["restart"] == "no"
    app_deps = services["app"]["depends_on"]
    assert app_deps["migrate"] == {"condition": "service_completed_successfully"}
    assert app_deps["postgres"] == {"condition": "service_healthy"}
    assert app_deps["argilla"] == {"condition": "service_healthy"}
    for name in ("elasticsearch", "postgres", "redis"):
        assert services["argilla"]["depends_on"][name] == {"condition": "service_healthy"}


def test_health_checks_and_volumes(compose):
    services = compose["services"]
    for name, service in services.items():
        if name != "migrate":  # a one-shot job has no health, only an exit code
            assert service["healthcheck"]["test"], name
    declared = set(compose["volumes"])
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    for stateful in ("postgres", "redis", "elasticsearch", "argilla", "app"):
        assert services[stateful].get("volumes"), stateful
    init_sql = ROOT / "docker" / "postgres-init" / "10-argilla-db.sql"
    assert "CREATE DATABASE argilla" in init_sql.read_text()


def test_app_environment_matches_the_settings_the_code_reads(compose):
    app_env = compose["services"]["app"]["environment"]
    assert compose["services"]["migrate"]["environment"] == app_env
    missing = settings_the_app_reads() - set(app_env)
    assert not missing, f"the app reads {missing} but docker-compose.yml does not set them"
    read_anywhere = env_vars_read(code_files()) | declared_settings()
    ours = {k for k in app_env if k.startswith(("RLAIF_", "ARGILLA_"))}
    unused = ours - read_anywhere
    assert not unused, f"docker-compose.yml sets {unused}, which no code reads"


def test_services_point_at_each_other(compose):
    services = compose["services"]
    app_env = services["app"]["environment"]
    argilla_env = services["argilla"]["environment"]
    assert re.search(r"@postgres:5432/", app_env["RLAIF_DATABASE_URL"])
    assert app_env["RLAIF_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert app_env["ARGILLA_API_URL"] == "http://argilla:6900"
    # The app logs in with the key that the Argilla image gives its owner on first start.
    assert app_env["ARGILLA_API_KEY"] == argilla_env["API_KEY"]
    assert argilla_env["ARGILLA_ELASTICSEARCH"] == "http://elasticsearch:9200"
    assert argilla_env["ARGILLA_REDIS_URL"] == "redis://redis:6379/0"
    assert services["argilla-worker"]["environment"] == argilla_env


def test_configuration_has_documented_defaults(compose):
    # Every ${VAR} substitution carries a default, so `docker compose up` works without a .env.
    text = (ROOT / "docker-compose.yml").read_text()
    substitutions = re.findall(r"(?<!\$)\$\{([^}]+)\}", text)
    assert substitutions
    assert all(":-" in s for s in substitutions), [s for s in substitutions if ":-" not in s]


def test_dockerfile_installs_cpu_torch_before_the_project():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==" in line)
    project = next(i for i, line in enumerate(lines) if "pip install ." in line)
    assert "download.pytorch.org/whl/cpu" in lines[torch] and torch < project


def test_no_module_reads_the_environment_but_the_settings():
    """Configuration is declared once: pipeline/settings.py. Elsewhere only writes for libraries
    (setdefault) and copies of the whole environment for child processes."""
    others = [p for p in code_files() if p != ROOT / "pipeline" / "settings.py"]
    assert env_vars_read(others) == {"ACCELERATE_USE_CPU"}  # os.environ.setdefault for accelerate


def test_compose_sets_exactly_the_deployment_settings(compose):
    """Each RLAIF_*/ARGILLA_* variable the app's service sets is a field of pipeline/settings.py
    marked compose=True, and each such field is set: neither side can drift."""
    app_env = compose["services"]["app"]["environment"]
    ours = {k for k in app_env if k.startswith(("RLAIF_", "ARGILLA_"))}
    assert ours == settings_the_app_reads()
    assert ours <= declared_settings()
