"""Who may import whom: the rules in the README's architecture section, checked on the source.

Each module is parsed, never imported, so the rules hold for every module whatever the tests load.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coffeeshop", "customers", "verification")

# Another app's public surface: what one app may import from the other.
PUBLIC_SURFACE = {
    "customers": {
        "customers.models",
        "customers.selectors",
        "customers.services",
        "customers.errors",
    },
    "verification": {
        "verification.models",
        "verification.selectors",
        "verification.services",
        "verification.errors",
    },
}
# verification extends the customer admin the way Django's docs extend the User admin: the class
# itself, and nothing else of that module.
ADMIN_EXTENSIONS = {("verification.admin", "customers.admin.CustomerAdmin")}

# Modules by the process that runs them; the ones serving both are listed in
# test_every_module_is_assigned_a_process_or_shared.
WORKER_MODULES = {
    "verification.workflows",
    "verification.activities",
    "verification.worker_services",
    "verification.worker",
    "verification.channels",
    "verification.sms",
    "verification.voice",
    "verification.mail",
    "verification.twilio",
    "verification.management.commands.run_temporal_worker",
}
WEB_MODULES = {
    "verification.services",
    "verification.selectors",
    "verification.views",
    "verification.api",
    "verification.webhooks",
    "verification.admin",
    "verification.forms",
    "verification.urls",
    "verification.limits",
    "verification.metrics",
    "verification.errors",
    "customers.services",
    "customers.views",
    "customers.api",
    "customers.admin",
    "customers.forms",
    "customers.urls",
    "customers.serializers",
    "coffeeshop.urls",
    "coffeeshop.wsgi",
    "coffeeshop.asgi",
    "coffeeshop.temporal.codec_api",
    *(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "coffeeshop" / "web").rglob("*.py")
    ),
}
# System checks run in both processes and look at the worker's channel backends too.
SHARED_EXCEPTIONS = {
    ("verification.checks", "verification.sms"),
    ("verification.checks", "verification.voice"),
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = project_modules()


def imports_of(module: str, *, with_names: bool = False) -> set[str]:
    """The project modules `module` imports, at module level or inside functions; with
    `with_names`, also each name it takes from one (`customers.admin.CustomerAdmin`)."""
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in MODULES and node.level == 0:
            taken = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(taken if with_names else {node.module, *(taken & MODULES.keys())})
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in MODULES
            )
    return found - {module}


def module_level_imports_of(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found - {module}


def app_of(module: str) -> str:
    return module.split(".")[0]


def test_each_app_reaches_the_other_only_through_its_public_surface():
    breaches = []
    for module in MODULES:
        for imported in imports_of(module, with_names=True):
            app, other = app_of(module), app_of(imported)
            if app == other or other == "coffeeshop":
                continue
            if app == "coffeeshop":
                breaches.append(f"{module} -> {imported} (coffeeshop is generic)")
            elif (module, imported) not in ADMIN_EXTENSIONS:
                owner = imported if imported in MODULES else imported.rpartition(".")[0]
                if owner not in PUBLIC_SURFACE[other]:
                    breaches.append(f"{module} -> {imported}")
    assert breaches == []


def test_no_module_level_import_cycle():
    graph = {module: module_level_imports_of(module) for module in MODULES}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in graph[module]:
            if imported in path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    done: set[str] = set()
    for module in graph:
        if module not in done:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize(
    ("runs_in", "must_not_import"),
    [(WORKER_MODULES, WEB_MODULES), (WEB_MODULES, WORKER_MODULES)],
    ids=["worker modules import no web module", "web modules import no worker module"],
)
def test_a_module_serves_one_process(runs_in, must_not_import):
    crossings = [
        f"{module} -> {imported}"
        for module in sorted(runs_in)
        for imported in imports_of(module)
        if imported in must_not_import
    ]
    assert crossings == []


def test_a_module_serving_both_processes_imports_neither_ones_modules():
    crossings = [
        f"{module} -> {imported}"
        for module in sorted(SHARED)
        for imported in imports_of(module)
        if imported in WORKER_MODULES | WEB_MODULES and (module, imported) not in SHARED_EXCEPTIONS
    ]
    assert crossings == []


def test_the_workflow_imports_no_django_and_only_the_contract():
    tree = ast.parse(MODULES["verification.workflows"].read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name and name.split(".")[0] == "django"]
    assert {name for name in imported if name and app_of(name) in PACKAGES} == {
        "verification.contracts"
    }


SHARED = {
    "verification.contracts",
    "verification.codes",
    "verification.records",
    "verification.reconciliation",
    "verification.management.commands.reconcile_verifications",
    "verification.models",
    "verification.checks",
    "verification.apps",
    "verification.management",
    "verification.management.commands",
    "verification",
    "customers",
    "customers.models",
    "customers.errors",
    "customers.selectors",
    "customers.validators",
    "customers.apps",
    "coffeeshop",
    "coffeeshop.settings",
    "coffeeshop.settings_test",
    "coffeeshop.apps",
    "coffeeshop.errors",
    "coffeeshop.phones",
    "coffeeshop.countries",
    "coffeeshop.emails",
    "coffeeshop.logs",
    "coffeeshop.temporal",
    "coffeeshop.temporal.config",
    "coffeeshop.temporal.client",
    "coffeeshop.temporal.codec",
}


def test_every_module_is_assigned_a_process_or_shared():
    unassigned = set(MODULES) - WORKER_MODULES - WEB_MODULES - SHARED
    assert unassigned == set(), "add new modules to this file's lists"
