// Every command's usage text, in one place so `clinimesh X --help`, usage errors and the README's
// CLI table say the same thing. Kept free of imports so printing help loads nothing else.

export const BODY_LIMIT_TEXT = '4 MiB';

const CONNECTION = '[--admin URL] [--credential FILE]';

export const USAGE: Readonly<Record<string, string>> = {
  serve: `Usage: clinimesh serve [-f MANIFESTS…] [--data-dir .clinimesh] [--ca-dir DIR] [--new-ca] [--trust-domain TD]
  [--host 127.0.0.1] [--xds-port 18000] [--xds-rest-port 18001] [--xds-insecure] [--xds-plaintext-port N]
  [--admin-host 127.0.0.1] [--admin-port 19000] [--admin-allowed-host NAME…] [--metrics-public]
  [--workload-cert-ttl 24h] [--agent-credential-ttl 24h]
  [--k8s-api-url URL] [--k8s-token-file F] [--k8s-ca-file F] [--k8s-audience clinimesh]
  [--consul] [--consul-addr A] [--consul-token T] [--consul-cacert F] [--consul-client-cert F] [--consul-client-key F]
  [--store file|consul [--store-prefix clinimesh] --ca-kek-file F [--replica-name NAME]]
Runs the control plane until SIGINT/SIGTERM. Ports are 0-65535 (0: any free port).
--store consul: replicas share state in Consul KV; the CA's keys are sealed with the 32-byte key in
--ca-kek-file (the same on every replica); one elected leader runs root rotations.`,
  validate: `Usage: clinimesh validate FILE|DIR…
Checks manifests offline (directories recursively) and prints every problem as file:line:col.
An empty file or a directory without manifests is an error.`,
  agent: `Usage: clinimesh agent --control-plane HOST:PORT… --out-dir DIR (--join-token T | --join-token-file F | --k8s-token-file F)
  [--instance NAME (default: the token's, else $POD_NAME, else the host name)] [--ca-file FILE]
  [--transport ads|rest|delta] [--xds-address HOST:PORT…] [--envoy-admin-port 15000] [--audit-log PATH]
  [--bundle-poll 30s] [--proxyless [--xds-proxy-port 15010]]
Attests this workload to the control plane (HTTPS port, default 18001), makes its keys locally, and
writes DIR/envoy.json and DIR/sds/ for Envoy: run \`envoy -c DIR/envoy.json\` beside it.
Several replicas: repeat --control-plane (or give A:P,B:P, or one Service name in front of them);
the agent's calls and Envoy's xDS stream fail over between them (--xds-address repeats likewise).
With --proxyless it serves a proxyless gRPC application instead: DIR/grpc-bootstrap.json (set
GRPC_XDS_BOOTSTRAP to it), certificate files in DIR/certs/, and a loopback xDS proxy that carries the
application's ADS stream to the control plane over the agent's mutual TLS.`,
  apply: `Usage: clinimesh apply -f FILE|DIR|- … [-R] [--dry-run] [--wait [--timeout 30s]] ${CONNECTION}
Applies manifests to the running control plane, all files at once or nothing. \`-f -\` reads stdin;
a directory contributes its own *.yaml/*.yml files (-R: and its subdirectories'). Problems name each
file and line:col as \`clinimesh validate\` does. The request body may be at most ${BODY_LIMIT_TEXT}.
--wait waits until the affected sidecars ACK the new config (exit 0) or NACK it (exit 1, with
Envoy's error text); without it, apply prints the revision and does not wait.`,
  delete: `Usage: clinimesh delete KIND NS/NAME | delete KIND NAME -n NS | delete -f FILE|DIR|- … [-R] [--dry-run] [--wait [--timeout 30s]] ${CONNECTION}
Deletes one manifest, or every manifest named in the files (all or nothing).
KIND: mesh, service (svc), accesspolicy (ap), trafficpolicy (tp); any case, singular or plural.`,
  diff: `Usage: clinimesh diff -f FILE|DIR|- … [-R] ${CONNECTION}
Shows what \`apply\` would change: each added or changed document as a unified diff of its YAML.
Exit 0: no differences; 1: differences; 2: an error (as kubectl diff).`,
  get: `Usage: clinimesh get KIND [NAME|NS/NAME] [-n NS] [-o table|yaml|json] ${CONNECTION}
Lists manifests in force. KIND: mesh, service(s)/svc, accesspolicy/accesspolicies/ap, trafficpolicy/tp, externalservice(s)/ext (any case).`,
  describe: `Usage: clinimesh describe KIND NS/NAME [-n NS] [-o json] ${CONNECTION}
A manifest and what is derived from it: instances, endpoints, which sidecars call it, the policies
that target it and its sidecars' sync state.`,
  status: `Usage: clinimesh status ${CONNECTION}
The state's revision and every connected sidecar's raw sync status (JSON).`,
  'proxy-status': `Usage: clinimesh proxy-status [-o table|json] ${CONNECTION}
Each connected sidecar, per xDS type: SYNCED (ACKed what it is served now), STALE (not ACKed yet),
NACKED (rejected it; Envoy's error is printed below the table) or NOT SENT (never asked), and AGE.`,
  'config-dump': `Usage: clinimesh config-dump [--node NS/SVC/INST] ${CONNECTION}
What a sidecar is being served (private keys redacted); without --node, the nodes known.`,
  history: `Usage: clinimesh history [--limit N] [--json] ${CONNECTION}
Who changed what, and the revision it left.`,
  version: `Usage: clinimesh version [--client] [-o json] ${CONNECTION}
The client's and the server's version, git commit and Node.js version, and the server's revision.`,
  token: `Usage: clinimesh token create --name N --role admin|editor|viewer [--namespace NS…] [--ttl 24h] ${CONNECTION}
       clinimesh token list ${CONNECTION}
       clinimesh token revoke ID ${CONNECTION}
Operator tokens for the admin API (admin only); a new token's secret is printed once.`,
  'join-token': `Usage: clinimesh join-token create --namespace NS --service S [--instance I] [--ttl 15m] ${CONNECTION}
A one-time token a node agent spends to attest its workload.`,
};

export const HELP = `clinimesh — a service mesh control plane for clinical services

Usage: clinimesh COMMAND [options]   (clinimesh COMMAND --help for each)

  clinimesh serve [-f MANIFESTS…] [--admin-port 19000] …   run the control plane
  clinimesh validate FILE|DIR…                    check manifests offline
  clinimesh analyze [-f FILES…]                   clinical checks (offline, or the running state)
  clinimesh agent --control-plane H:P --out-dir D --join-token T   the node agent beside one Envoy
  clinimesh apply -f FILE|DIR|- [-R] [--wait]     apply manifests (atomically)
  clinimesh diff -f FILE|DIR|- [-R]               what an apply would change (exit 1: differences)
  clinimesh delete KIND NS/NAME | -f FILE…        delete manifests
  clinimesh get KIND [NAME|NS/NAME] [-o yaml]     list manifests in force
  clinimesh describe KIND NS/NAME                 a manifest and what is derived from it
  clinimesh proxy-status                          sidecars per type: SYNCED/STALE/NACKED/NOT SENT
  clinimesh status                                revision and raw per-sidecar status (JSON)
  clinimesh config-dump [--node NS/SVC/INST]      what a sidecar is being served
  clinimesh history [--limit N]                   who changed what
  clinimesh version [--client]                    client and server versions
  clinimesh token create|list|revoke              operator tokens
  clinimesh join-token create --namespace NS --service S   a one-time token for a node agent

Remote commands take --credential FILE (else $CLINIMESH_CREDENTIAL, else $CLINIMESH_TOKEN with
$CLINIMESH_ADMIN and $CLINIMESH_CA_FILE, else ./.clinimesh/admin-credential.json) and --admin URL.
Exit codes: 0 success; 1 an error (unreachable API, refused change, missing file); 2 a command line
that cannot run (unknown command or flag, missing argument); diff: 1 when there are differences.`;
