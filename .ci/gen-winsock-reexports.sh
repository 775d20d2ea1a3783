#!/usr/bin/env bash
# Regenerates crates/wsock/src/sys/reexports.rs from the pinned windows-sys source in the cargo
# registry: every `pub const|type|struct|union` of Win32::Networking::WinSock (not the functions).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch -q
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/windows-sys-0.61.2 | head -n1)
names=$(grep -oE '^pub (const|type|struct|union) [A-Za-z0-9_]+' "$src/src/Windows/Win32/Networking/WinSock/mod.rs" | awk '{print $3}' | sort -u)
{
  echo "// @generated from windows-sys 0.61.2, Win32::Networking::WinSock: every type, struct, union and"
  echo "// constant (not the functions: wsock defines those itself, in \`super\`). Regenerate with"
  echo "// \`.ci/gen-winsock-reexports.sh\` when the pinned windows-sys version changes."
  echo "pub use windows_sys::Win32::Networking::WinSock::{"
  for n in $names; do echo "    $n,"; done
  echo "};"
} > crates/wsock/src/sys/reexports.rs
