#!/usr/bin/env bash
# Builds the zeta-provision image from Containerfile with buildah (Debian package "buildah").
#
#   scripts/build-image.sh [--tag NAME[:TAG]] [--runtime-base REF] [--build-base REF] [--revision REV]
#                          [--target ci] [--push DEST] [--digest-file FILE] [-- EXTRA BUILDAH BUILD ARGS…]
#
# The labels' values come from package.json (version, license, repository URL) and git (revision), so
# the image says what it was built from. --runtime-base / --build-base replace the pinned public bases
# (tests build on a base made locally). --target ci builds the CI-job image (with a shell, for GitHub
# Actions / GitLab CI; never for the cluster) instead of the distroless runtime image. --push DEST
# pushes to docker://DEST (or any buildah transport) and prints the digest to reference the image
# by. Storage and isolation follow buildah's own
# variables: BUILDAH_ISOLATION=chroot where no OCI runtime is installed, STORAGE_DRIVER=vfs as root
# without overlay support.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pkg() { node -p "const p = require(process.argv[1]); $1" "$root/package.json"; }

version=$(pkg 'p.version')
tag="zeta-provision:$version"
runtime_base=""
build_base=""
revision=""
push=""
digest_file=""
target=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --runtime-base) runtime_base=$2; shift 2 ;;
    --build-base) build_base=$2; shift 2 ;;
    --revision) revision=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    --digest-file) digest_file=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

command -v buildah >/dev/null || { echo "build-image.sh: buildah is missing: apt-get install -y buildah" >&2; exit 1; }

# A repository URL (string or {url}), as npm writes it; "git+https://…/x.git" becomes "https://…/x".
source_url=$(pkg 'const r = p.repository; const u = typeof r === "string" ? r : r && r.url; if (!u) throw new Error("package.json has no repository url"); u.replace(/^git\+/, "").replace(/\.git$/, "")')
licenses=$(pkg 'p.license')
if [ -z "$revision" ]; then
  revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
  # A build from a modified tree must not claim to be that commit.
  if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    revision="$revision-dirty"
  fi
fi

args=(
  --file "$root/Containerfile"
  --tag "$tag"
  --format oci
  --identity-label=false
  --build-arg "VERSION=$version"
  --build-arg "LICENSES=$licenses"
  --build-arg "SOURCE=$source_url"
  --build-arg "REVISION=$revision"
)
[ -n "$runtime_base" ] && args+=(--build-arg "RUNTIME_BASE=$runtime_base")
[ -n "$build_base" ] && args+=(--build-arg "BUILD_BASE=$build_base")
[ -n "$target" ] && args+=(--target "$target")

buildah build "${args[@]}" "${extra[@]}" "$root"

if [ -n "$push" ]; then
  case "$push" in *://*|*:/*) dest=$push ;; *) dest="docker://$push" ;; esac
  digest_out=${digest_file:-$(mktemp)}
  buildah push --digestfile "$digest_out" "$tag" "$dest"
  digest=$(cat "$digest_out")
  [ -z "$digest_file" ] && rm -f "$digest_out"
  echo "pushed $dest"
  echo "digest $digest"
  # The repository without tag or digest (a registry port is not a tag).
  name=${push#*://}; name=${name%@*}; last=${name##*/}
  case "$last" in *:*) name=${name%:*} ;; esac
  echo "pin it in manifests/overlays/*/kustomization.yaml, images: name: zeta-provision, newName: $name, digest: $digest"
fi
