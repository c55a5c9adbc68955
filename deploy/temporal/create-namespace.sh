#!/bin/sh
# Registers the app's namespace once the server answers, and leaves an existing one alone. The web
# app and the worker start only after this exits 0. Reads TEMPORAL_ADDRESS, NAMESPACE and
# RETENTION (how long closed runs stay readable).
set -eu

tries=90

try=1
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    if [ "$try" -ge "$tries" ]; then
        echo "Temporal at $TEMPORAL_ADDRESS was not healthy after $tries tries." >&2
        exit 1
    fi
    try=$((try + 1))
    sleep 2
done

try=1
until temporal operator namespace describe --namespace "$NAMESPACE" \
        --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
        --address "$TEMPORAL_ADDRESS"; do
    if [ "$try" -ge "$tries" ]; then
        echo "Could not create namespace $NAMESPACE after $tries tries." >&2
        exit 1
    fi
    try=$((try + 1))
    sleep 2
done
echo "Namespace $NAMESPACE is ready."
