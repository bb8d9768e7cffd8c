#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real when absent: the MQTT broker
# (mosquitto), Prometheus (prometheus: /usr/bin/prometheus and /usr/bin/promtool) and
# systemd-analyze (systemd), which checks the unit file.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Stops a system service the package just started and keeps it from starting at boot. The tests
# start their own servers on free loopback ports and never use these.
stop_system_service() {
  local name=$1 user=$2
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now "$name" >/dev/null 2>&1 || true
  else
    $SUDO service "$name" stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
      $SUDO update-rc.d "$name" disable >/dev/null 2>&1 || true
    fi
  fi
  # Without an init system the daemon may still run: only the service account's process is
  # stopped, never a Prometheus another user started (such as a test harness).
  local pids
  pids=$(pgrep -u "$user" -x "$name" || true)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    $SUDO kill $pids 2>/dev/null || true
  fi
}

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v promtool >/dev/null 2>&1 || [ -x /usr/bin/promtool ] || missing+=(prometheus)
# systemd-analyze checks the unit file (verify, security); it ships with the systemd package.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # Without recommends: prometheus would also bring prometheus-node-exporter and its services.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  for package in "${missing[@]}"; do
    if [ "$package" = prometheus ]; then
      # The package enables and starts a system Prometheus on :9090.
      stop_system_service prometheus prometheus
    fi
  done
fi
