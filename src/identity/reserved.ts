// The control plane's own identity lives in this namespace; no workload is ever issued one there.
export const RESERVED_NAMESPACE = 'clinimesh-system';
