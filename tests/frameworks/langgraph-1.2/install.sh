#!/usr/bin/env bash
# Installs @langchain/langgraph-checkpoint 1.2.x here (node_modules is gitignored) for the validation
# run against the 1.2 contract (../langgraph/vitest.config.1.2.mjs). Idempotent: does nothing when the
# pinned version is already installed. --legacy-peer-deps keeps npm from installing a second
# @langchain/core: the repo's copy is used.
set -euo pipefail
cd "$(dirname "$0")"
want=$(node -p 'require("./package.json").dependencies["@langchain/langgraph-checkpoint"]')
have=$(node -p 'try { require("./node_modules/@langchain/langgraph-checkpoint/package.json").version } catch { "" }')
if [ "$have" = "$want" ]; then exit 0; fi
# The committed package-lock.json pins the tarball's integrity hash.
if [ -f package-lock.json ]; then
  npm ci --prefix . --no-audit --no-fund --legacy-peer-deps --loglevel=error
else
  npm install --prefix . --no-audit --no-fund --legacy-peer-deps --loglevel=error
fi
