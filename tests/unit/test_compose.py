"""The deployment files (SPEC §5) are valid without a Docker engine.

``docker-compose config`` (Debian's docker-compose 1.x: it validates and interpolates
without talking to a daemon) must accept docker-compose.yml when JWT_SECRET is set and
refuse it when it is not; ``nginx -t`` must accept deploy/nginx.conf once its upstream
hostnames (Docker's service names) and its pid/log/temp paths are pointed at this machine.
A missing ``docker-compose`` is a failure, not a skip: CI installs it (``./dev setup``).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from services.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
DOCKERFILE = REPO / "Dockerfile"
NGINX_BIN = "/usr/sbin/nginx"
SECRET = "compose-test-secret-" + "s" * 40
SECRETS_KEY = base64.b64encode(b"k" * 32).decode()
SERVERS = ("server1", "server2", "server3")
TESTS = "tests-mongo"  # profile "test": the suite against the stack's MongoDB
MONITORING = ("prometheus", "grafana")  # profile "observability"
PROMETHEUS_CONF = REPO / "deploy" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail("docker-compose is not installed: `apt-get install -y docker-compose` "
                    "(./dev setup does it); the compose file cannot be validated without it")
    return found


def _compose(*args: str, jwt_secret: str | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JWT_SECRET", "SECRETS_KEY", "ANTHROPIC_MODEL")
           and not k.startswith("COMPOSE_")}
    if jwt_secret is not None:
        env["JWT_SECRET"] = jwt_secret
        env["SECRETS_KEY"] = SECRETS_KEY
    # An empty env file: a developer's own .env must not change what is tested.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run(
        [_docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE),
         "--project-directory", str(REPO), "config", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def _load_yaml(text: str) -> dict:
    """PyYAML is not a project dependency, but docker-compose's own interpreter has it."""
    try:
        import yaml
    except ImportError:
        interpreter = "/usr/bin/python3"
        first = Path(_docker_compose()).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!"):
            interpreter = first[2:].strip().split()[0]
        out = subprocess.run(
            [interpreter, "-c",
             "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
            input=text, capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    result = _compose(jwt_secret=SECRET, tmp_path=tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return _load_yaml(result.stdout)


def test_compose_has_the_production_topology(config):
    services = config["services"]
    assert set(services) == {"mongo", "redis", "nginx", *SERVERS, TESTS, *MONITORING}
    assert all("profiles" not in services[n] for n in ("mongo", "redis", "nginx", *SERVERS))
    assert services["mongo"]["image"].startswith("mongo")
    assert services["redis"]["image"].startswith("redis")
    # MongoDB keeps its data in a named volume.
    mongo_volumes = [str(v) for v in services["mongo"]["volumes"]]
    assert any(v.startswith("mongo-data:/data/db") for v in mongo_volumes), mongo_volumes
    assert "mongo-data" in config["volumes"]
    for name in ("mongo", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_each_instance_is_built_here_and_configured_for_production(config):
    services = config["services"]
    ids = set()
    for name in SERVERS:
        svc = services[name]
        assert Path(svc["build"]["context"]).resolve() == REPO, svc["build"]
        env = svc["environment"]
        assert env["ENV"] == "production"
        assert env["JWT_SECRET"] == SECRET  # from the environment, not a default
        assert env["SECRETS_KEY"] == SECRETS_KEY
        # What compose hands an instance is a configuration the server accepts.
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        # No model pinned here: the server's own default applies unless the operator sets one.
        assert settings.anthropic_model == Settings().anthropic_model
        assert env["MONGO_URL"].startswith("mongodb://mongo")
        assert env["REDIS_URL"].startswith("redis://redis")
        # Only nginx's fixed address is trusted for X-Forwarded-For.
        nginx_ip = services["nginx"]["networks"]["default"]["ipv4_address"]
        assert settings.trusted_proxies == (f"{nginx_ip}/32",)
        assert env["HOST"] == "0.0.0.0"
        ids.add(env["INSTANCE_ID"])
        assert svc["depends_on"] == {"mongo": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
        assert "ports" not in svc, f"{name} must be reached through nginx only"
    assert len(ids) == len(SERVERS), "INSTANCE_ID must differ per instance"


def test_tests_service_runs_the_suite_against_the_stacks_mongo(config):
    svc = config["services"][TESTS]
    assert svc["profiles"] == ["test"], "`docker-compose up` must not start the tests"
    assert svc["environment"]["MONGO_URL"].startswith("mongodb://mongo")
    assert svc["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    assert Path(svc["build"]["context"]).resolve() == REPO
    # The image carries no tests (.dockerignore): they are mounted where the source is.
    mounts = [str(v) for v in svc["volumes"]]
    assert any(m.startswith(f"{REPO / 'tests'}:{svc['working_dir']}/tests") for m in mounts), mounts
    assert "pytest" in " ".join(svc["entrypoint"]) and svc["command"] == ["tests/contract"]
    assert "ports" not in svc


def test_nginx_is_the_one_public_port(config):
    services = config["services"]
    nginx = services["nginx"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"nginx", "grafana"}
    # Grafana (profile "observability") listens on the host's loopback only.
    assert [str(p).split(":")[0] for p in services["grafana"]["ports"]] == ["127.0.0.1"]
    assert len(nginx["ports"]) == 1
    assert nginx["depends_on"] == {name: {"condition": "service_healthy"} for name in SERVERS}
    mounts = [str(v) for v in nginx["volumes"]]
    assert any(m.startswith(f"{NGINX_CONF}:/etc/nginx/nginx.conf") for m in mounts), mounts


def test_compose_refuses_to_run_without_jwt_secret(tmp_path):
    result = _compose("--quiet", jwt_secret=None, tmp_path=tmp_path)
    assert result.returncode != 0, "docker-compose config succeeded without JWT_SECRET"
    assert "JWT_SECRET" in result.stderr


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"apt-get install[^\n]*\btshark\b", text)
    assert re.search(r"pip install \.", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert re.search(r"^EXPOSE 8000\b", text, re.M)
    assert re.search(r"^HEALTHCHECK\b.*?/health", text, re.M | re.S)
    assert re.search(r'^CMD \["python", "-m", "server"\]', text, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


# -- nginx --------------------------------------------------------------------------------

_PATH_DIRECTIVES = ("pid", "error_log", "access_log", "client_body_temp_path",
                    "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path")


def _localized_nginx_conf(tmp: Path) -> str:
    """deploy/nginx.conf with Docker service names → 127.0.0.1 and every path under tmp."""
    text = NGINX_CONF.read_text()
    for name in SERVERS:
        text = re.sub(rf"\bserver\s+{name}:", "server 127.0.0.1:", text)

    def local_path(match: re.Match) -> str:
        indent, directive, rest = match.group(1), match.group(2), match.group(3).split()
        target = tmp / f"{directive}.d" if directive.endswith("_temp_path") else tmp / directive
        return f"{indent}{directive} {target} {' '.join(rest[1:])};".replace(" ;", ";")

    pattern = rf"^(\s*)({'|'.join(_PATH_DIRECTIVES)})\s+([^;]+);"
    text = re.sub(pattern, local_path, text, flags=re.M)
    return text


def test_nginx_accepts_the_config(tmp_path):
    if not Path(NGINX_BIN).exists():
        pytest.fail(f"{NGINX_BIN} is missing: `apt-get install -y nginx` (./dev setup does it)")
    tmp_path.chmod(0o755)
    conf = tmp_path / "nginx.conf"
    conf.write_text(_localized_nginx_conf(tmp_path))
    # Nothing may point outside tmp_path any more (the system nginx stays untouched).
    for line in conf.read_text().splitlines():
        if line.strip().startswith(_PATH_DIRECTIVES):
            assert str(tmp_path) in line, line
    result = subprocess.run(
        [NGINX_BIN, "-t", "-p", f"{tmp_path}/", "-e", str(tmp_path / "startup-error.log"),
         "-c", str(conf)],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"nginx -t rejected deploy/nginx.conf:\n{result.stderr}"
    assert "test is successful" in result.stderr


def test_nginx_config_matches_the_compose_file(config):
    text = NGINX_CONF.read_text()
    upstream = re.search(r"upstream\s+\w+\s*\{(.*?)\}", text, re.S).group(1)
    assert re.search(r"^\s*ip_hash;", upstream, re.M), "polling transport needs ip_hash"
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream, re.M)
    assert sorted(servers) == [(name, "8000") for name in SERVERS]
    assert "map $http_upgrade $connection_upgrade" in text
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", text)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", text)
    assert re.search(r"proxy_set_header\s+Host\s+\$http_host;", text)
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", text)
    assert re.search(r"proxy_set_header\s+X-Real-IP\s+\$remote_addr;", text)
    assert re.search(r"proxy_buffering\s+off;", text)
    # Prometheus scrapes the instances themselves; the public port serves no metrics.
    assert re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+404;\s*\}", text)
    assert re.search(r"proxy_request_buffering\s+off;", text)
    read_timeout = re.search(r"proxy_read_timeout\s+(\d+)s;", text)
    assert read_timeout and int(read_timeout.group(1)) >= 600
    # nginx must let through everything the app accepts, so the app's JSON 413 is what a
    # client sees; it may add a little room for multipart framing, not more.
    body = re.search(r"client_max_body_size\s+(\d+)m;", text)
    assert body, "client_max_body_size must be set (in m)"
    upload_mb = {float(config["services"][n]["environment"]["MAX_UPLOAD_MB"]) for n in SERVERS}
    assert len(upload_mb) == 1, "every instance must have the same MAX_UPLOAD_MB"
    app_mb, nginx_mb = upload_mb.pop(), int(body.group(1))
    assert app_mb <= nginx_mb <= app_mb + 8, (app_mb, nginx_mb)


# -- the observability profile ------------------------------------------------------------

def _mounts(svc: dict) -> dict[str, str]:
    """target → source of a service's bind mounts (``source:target[:mode]``)."""
    out = {}
    for volume in svc["volumes"]:
        source, target = str(volume).split(":")[:2]
        out[target] = source
    return out


def test_observability_profile_is_valid_and_off_by_default(tmp_path, config):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "GRAFANA_"))}
    env.update(JWT_SECRET=SECRET, SECRETS_KEY=SECRETS_KEY)
    result = subprocess.run(
        [_docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE),
         "--project-directory", str(REPO), "--profile", "observability", "config", "-q"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in MONITORING:
        assert config["services"][name]["profiles"] == ["observability"], name


def test_prometheus_scrapes_every_instance(config):
    prometheus = config["services"]["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus/prometheus.yml"] == str(PROMETHEUS_CONF)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "ports" not in prometheus  # Grafana reaches it on the compose network
    conf = _load_yaml(PROMETHEUS_CONF.read_text())
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{name}:8000" for name in SERVERS]
    for name in SERVERS:  # what is scraped is what compose runs, on the port it listens on
        assert config["services"][name]["environment"]["PORT"] == "8000"


def test_grafana_loads_the_datasource_and_the_dashboard(config):
    grafana = config["services"]["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == str(GRAFANA / "provisioning")
    datasources = _load_yaml((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = _load_yaml((GRAFANA / "provisioning/dashboards/collab.yml").read_text())
    (provider,) = providers["providers"]
    assert mounts[provider["options"]["path"]] == str(GRAFANA / "dashboards")
    dashboard = json.loads((GRAFANA / "dashboards/collab.json").read_text())
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/collab.json"
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", ())}
    assert uids == {source["uid"]}, "every query goes to the provisioned Prometheus"
