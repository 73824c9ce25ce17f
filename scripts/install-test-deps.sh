#!/usr/bin/env bash
# Installs the Debian programs the test suite uses as peers, when they are missing.
# As root it runs apt-get; otherwise it fails and names the packages to install.
set -euo pipefail

# command → Debian package
declare -A needs=(
  [openssl]=openssl
  [tar]=tar
  [gzip]=gzip
  [sha256sum]=coreutils
  [gcab]=gcab
  [osslsigncode]=osslsigncode
  [cabextract]=cabextract
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [htpasswd]=apache2-utils
  [nginx]=nginx-light
  [xmllint]=libxml2-utils
  [xmlsec1]=xmlsec1
  [keytool]=default-jre-headless
  [zstd]=zstd
  [umoci]=umoci
  [buildah]=buildah
  [curl]=curl
  [script]=bsdutils
  [kubectl]=kubectl
  [setpriv]=util-linux
  [podman]=podman
  [xxd]=xxd
  [python3]=python3
  [base64]=coreutils
)

missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "missing test prerequisites; install them with: apt-get install -y ${packages[*]}" >&2
  exit 1
fi
echo "installing test prerequisites: ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
