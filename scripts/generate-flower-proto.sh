#!/usr/bin/env bash
# Regenerates Sources/Federation/FedRouteFlower/Proto/fleet.pb.swift from proto/flower/fleet.proto.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift of the swift-protobuf version in
# Package.swift (1.39.0). The plugin takes ~10 minutes to build, so the output is committed:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=$PWD/.build/release/protoc-gen-swift scripts/generate-flower-proto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
protoc --plugin=protoc-gen-swift="$PLUGIN" --swift_out=Sources/Federation/FedRouteFlower/Proto \
  -I proto/flower proto/flower/fleet.proto
