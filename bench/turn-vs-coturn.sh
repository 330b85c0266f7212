#!/usr/bin/env bash
# Issue 6's TURN benchmark in one run: the same turnutils_uclient flood
# (coturn's own load client) against
#   coturn   Debian's turnserver (use-auth-secret, no quotas or caps);
#   tandem   the release `tandem serve`'s embedded TURN server (no caps);
# both relaying to one turnutils_peer echo on 127.0.0.2, with credentials in
# the same REST-API scheme and secret. Each round runs uclient once per server,
# alternating: C clients (uclient makes RTP/RTCP pairs) each sending N
# ChannelData messages of L bytes every Z ms, echoed back through the relay.
# Prints per server: messages/s through the relay (peak 5-second window and
# mean over the run; every message is relayed twice, out and back), loss,
# average RTT, server CPU seconds and CPU µs per message; then the
# Tandem/coturn ratios (target: packets/s >= coturn's, 0 % loss).
#
# Run from anywhere:  bash bench/turn-vs-coturn.sh [options]
#   --clients 100 --messages 3000 --interval 1 --length 100 --rounds 2 [--tcp]
#   --parallel K   K uclient processes at once (one uclient tops out near 50k
#                  msg/s; with more the servers, not the client, are the limit)
#   env: CARGO_TARGET_DIR, TANDEM_BIN (skip the build)
# Needs: cargo, coturn (turnserver, turnutils_uclient, turnutils_peer), openssl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT=turn-vs-coturn
source bench/lib.sh

CLIENTS=100 MESSAGES=3000 INTERVAL=1 LENGTH=100 ROUNDS=2 TCP="" PARALLEL=1
while [ $# -gt 0 ]; do
  case $1 in
    --clients) CLIENTS=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --length) LENGTH=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --tcp) TCP=-t; shift ;;
    --parallel) PARALLEL=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "bench/$SCRIPT.sh"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
for tool in turnserver turnutils_uclient turnutils_peer openssl; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install coturn openssl)"
done
build_tandem

WORK=$(mktemp -d)
SECRET=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
COTURN_PORT=34781 TANDEM_PORT=34782 PEER_PORT=34790
# Not the relay address: a permission to it reaches only relay ports.
PEER_IP=127.0.0.2
cleanup() {
  for name in coturn tandem peer; do
    [ -n "${PID[$name]:-}" ] && kill "${PID[$name]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

turnserver -n --listening-ip 127.0.0.1 --listening-port "$COTURN_PORT" --relay-ip 127.0.0.1 \
  --min-port 50000 --max-port 50999 --use-auth-secret --static-auth-secret "$SECRET" \
  --realm tandem --allow-loopback-peers --no-tls --no-dtls --no-cli --log-file stdout \
  >"$WORK/coturn.log" 2>&1 &
PID[coturn]=$!
TURN_SECRET=$SECRET TANDEM_TURN_LISTEN=127.0.0.1:$TANDEM_PORT TANDEM_TURN_RELAY_IP=127.0.0.1 \
  TANDEM_TURN_RELAY_PORTS=51000-51999 TANDEM_TURN_ALLOW_PEERS=127.0.0.2/32 TANDEM_TURN_TCP_MAX_PER_IP=0 \
  TANDEM_TURN_USER_QUOTA=100000 TANDEM_TURN_TOTAL_QUOTA=100000 TANDEM_TURN_MAX_BYTES_PER_SEC=0 \
  TANDEM_LOG=warn "$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/data" \
  >"$WORK/tandem.out" 2>"$WORK/tandem.log" &
PID[tandem]=$!
turnutils_peer -L "$PEER_IP" -p "$PEER_PORT" >"$WORK/peer.log" 2>&1 &
PID[peer]=$!

# credentials USER: "username password", valid for an hour.
credentials() {
  local user
  user="$(($(date +%s) + 3600)):$1"
  echo "$user $(printf '%s' "$user" | openssl dgst -sha1 -hmac "$SECRET" -binary | base64)"
}
# Waits until each server relays one message end to end.
for target in coturn:$COTURN_PORT tandem:$TANDEM_PORT; do
  read -r u p < <(credentials warmup)
  for ((i = 0; i < 100; i++)); do
    out=$(turnutils_uclient -u "$u" -w "$p" -p "${target#*:}" -e "$PEER_IP" -r "$PEER_PORT" \
      -m 2 -n 1 -l "$LENGTH" -c 127.0.0.1 2>&1 || true)
    grep -q "Total lost packets 0 (" <<<"$out" && break
    sleep 0.2
  done
  grep -q "Total lost packets 0 (" <<<"$out" || die "${target%%:*} does not relay: $out"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A RATE MEAN LOSS RTT CPU SENT RECV
echo "machine: $(machine)"
echo "flood: $PARALLEL x turnutils_uclient -m $CLIENTS -n $MESSAGES -z $INTERVAL -l $LENGTH ${TCP:+-t (TCP to the server)} ; $ROUNDS round(s)"
for ((round = 1; round <= ROUNDS; round++)); do
  for target in coturn tandem; do
    port=$COTURN_PORT; [ "$target" = tandem ] && port=$TANDEM_PORT
    read -r u p < <(credentials "r$round")
    before=$(cpu_ticks "${PID[$target]}")
    log="$WORK/$target.$round"
    for ((k = 1; k <= PARALLEL; k++)); do
      turnutils_uclient $TCP -u "$u" -w "$p" -p "$port" -e "$PEER_IP" -r "$PEER_PORT" \
        -m "$CLIENTS" -n "$MESSAGES" -z "$INTERVAL" -l "$LENGTH" 127.0.0.1 >"$log.$k" 2>&1 &
    done
    wait_ok=1
    for job in $(jobs -p); do
      [ "$job" = "${PID[coturn]}" ] || [ "$job" = "${PID[tandem]}" ] || [ "$job" = "${PID[peer]}" ] \
        || wait "$job" || wait_ok=0
    done
    [ "$wait_ok" = 1 ] || die "$target: uclient failed: $(tail -3 "$log.1")"
    after=$(cpu_ticks "${PID[$target]}")
    # Per-second cumulative counts, summed over the processes by second ->
    # peak 5 s rate and mean rate while sending.
    read -r rate mean < <(awk -F'tot_recv_msgs=' 'FNR == 1 {i = 0} /msz=/ {split($2, a, ","); r[i++] += a[1]; if (i > n) n = i}
      END { peak = 0; first = -1; last = 0
            for (i = 0; i < n; i++) { if (first < 0 && r[i] > 0) first = i; if (r[i] > r[last]) last = i }
            for (i = 0; i + 5 < n; i++) if ((r[i+5] - r[i]) / 5 > peak) peak = (r[i+5] - r[i]) / 5
            span = last - first + 1; if (first < 0) span = 1
            printf "%d %d\n", peak, r[last] / span }' "$log".*)
    cat "$log".* >"$log"
    sent=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\1/p' "$log" | awk '{s += $1} END {print s}')
    recv=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\2/p' "$log" | awk '{s += $1} END {print s}')
    loss=$(awk -v s="$sent" -v r="$recv" 'BEGIN {printf "%.6f", (s > 0 ? 100 * (s - r) / s : 0)}')
    rtt=$(sed -n 's/.*Average round trip delay \([0-9.]*\) ms.*/\1/p' "$log" | awk '{s += $1; n++} END {printf "%.6f", (n ? s / n : 0)}')
    cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')
    printf '%-7s round %d: %7s msg/s peak, %7s mean, sent %s recv %s, loss %s%%, RTT %s ms, server CPU %s s (%s µs/msg)\n' \
      "$target" "$round" "$rate" "$mean" "$sent" "$recv" "$loss" "$rtt" "$cpu" \
      "$(awk -v c="$cpu" -v m="$recv" 'BEGIN {printf "%.1f", (m > 0 ? c * 1e6 / m : 0)}')"
    RATE[$target]="${RATE[$target]:-} $rate"; MEAN[$target]="${MEAN[$target]:-} $mean"
    LOSS[$target]="${LOSS[$target]:-} $loss"; RTT[$target]="${RTT[$target]:-} $rtt"
    CPU[$target]="${CPU[$target]:-} $cpu"; RECV[$target]="${RECV[$target]:-} $recv"
  done
done
avg() { awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.3f", (NF ? s / NF : 0)}' <<<"$1"; }
sum() { awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.3f", s}' <<<"$1"; }
echo
printf '%-7s %12s %12s %8s %9s %12s\n' server "peak msg/s" "mean msg/s" "loss %" "RTT ms" "CPU µs/msg"
for target in coturn tandem; do
  printf '%-7s %12.0f %12.0f %8.3f %9.3f %12.1f\n' "$target" "$(avg "${RATE[$target]}")" \
    "$(avg "${MEAN[$target]}")" "$(avg "${LOSS[$target]}")" "$(avg "${RTT[$target]}")" \
    "$(awk -v c="$(sum "${CPU[$target]}")" -v m="$(sum "${RECV[$target]}")" 'BEGIN {printf "%.1f", (m > 0 ? c * 1e6 / m : 0)}')"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
tc=$(awk -v a="$(sum "${CPU[tandem]}")" -v b="$(sum "${RECV[tandem]}")" 'BEGIN {print (b > 0 ? a / b : 0)}')
cc=$(awk -v a="$(sum "${CPU[coturn]}")" -v b="$(sum "${RECV[coturn]}")" 'BEGIN {print (b > 0 ? a / b : 0)}')
echo "tandem/coturn: peak msg/s $(ratio "$(avg "${RATE[tandem]}")" "$(avg "${RATE[coturn]}")")x," \
  "mean msg/s $(ratio "$(avg "${MEAN[tandem]}")" "$(avg "${MEAN[coturn]}")")x," \
  "server CPU per message $(ratio "$tc" "$cc")x (lower is better)"
echo "done: $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
