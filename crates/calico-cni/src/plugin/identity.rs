//! Who a CNI invocation is for, and the names Calico derives from it.
//!
//! With Kubernetes arguments (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`) the
//! orchestrator is `k8s`; otherwise it is `cni` and the container ID stands
//! in for the pod. Names, as Calico computes them:
//! - host veth: `cali` + the first 11 hex digits of sha1("<namespace>.<pod>")
//!   (without Kubernetes arguments: of the container ID), 15 characters;
//! - WorkloadEndpoint: `<node>-k8s-<pod>-<iface>` (`<node>-cni-<id>-<iface>`),
//!   each part with `-` doubled, so the parts can be told apart.

use cni_spec::env::Env;

/// The identity of one workload interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `k8s` or `cni`.
    pub orchestrator: &'static str,
    /// The Kubernetes namespace (`default` without Kubernetes arguments).
    pub namespace: String,
    /// The pod name (empty without Kubernetes arguments).
    pub pod: String,
    /// The workload: the pod name, or the container ID.
    pub workload: String,
    pub container_id: String,
    /// The interface in the container (`CNI_IFNAME`), the endpoint name.
    pub endpoint: String,
    pub node: String,
}

impl Workload {
    /// The identity of this invocation on `node`.
    pub fn from_env(env: &Env, node: &str) -> Workload {
        let k8s = env.k8s_args();
        match (k8s.namespace, k8s.pod_name) {
            (Some(ns), Some(pod)) if !ns.is_empty() && !pod.is_empty() => Workload {
                orchestrator: "k8s",
                namespace: ns,
                workload: pod.clone(),
                pod,
                container_id: env.container_id.clone(),
                endpoint: env.ifname.clone(),
                node: node.to_string(),
            },
            _ => Workload {
                orchestrator: "cni",
                namespace: "default".into(),
                pod: String::new(),
                workload: env.container_id.clone(),
                container_id: env.container_id.clone(),
                endpoint: env.ifname.clone(),
                node: node.to_string(),
            },
        }
    }

    pub fn is_k8s(&self) -> bool {
        self.orchestrator == "k8s"
    }

    /// The host end of the veth pair.
    pub fn host_veth(&self) -> String {
        if self.is_k8s() {
            veth_name(&format!("{}.{}", self.namespace, self.pod))
        } else {
            veth_name(&self.container_id)
        }
    }

    /// The WorkloadEndpoint's name.
    pub fn endpoint_name(&self) -> String {
        let e = |s: &str| s.replace('-', "--");
        if self.is_k8s() {
            format!(
                "{}-k8s-{}-{}",
                e(&self.node),
                e(&self.pod),
                e(&self.endpoint)
            )
        } else {
            format!(
                "{}-{}-{}-{}",
                e(&self.node),
                self.orchestrator,
                e(&self.workload),
                e(&self.endpoint)
            )
        }
    }
}

/// `cali` + the first 11 hex digits of the SHA-1 of `key`.
pub fn veth_name(key: &str) -> String {
    let digest = sha1_smol::Sha1::from(key).digest().to_string();
    format!("cali{}", &digest[..11])
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::env::Env;

    fn env(args: &str) -> Env {
        Env::from_lookup(|k| match k {
            "CNI_COMMAND" => Some("ADD".into()),
            "CNI_CONTAINERID" => Some("abc123".into()),
            "CNI_NETNS" => Some("/run/netns/x".into()),
            "CNI_IFNAME" => Some("eth0".into()),
            "CNI_ARGS" => Some(args.into()),
            "CNI_PATH" => Some("/opt/cni/bin".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn kubernetes_names_as_calico() {
        let w = Workload::from_env(
            &env("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod5"),
            "node112",
        );
        assert_eq!(w.orchestrator, "k8s");
        assert_eq!(w.endpoint_name(), "node112-k8s-pod5-eth0");
        // sha1("default.pod5") = 8e9fad9b07c2..., the seed's cali8e9fad9b07c.
        assert_eq!(w.host_veth(), "cali8e9fad9b07c");
        assert_eq!(w.host_veth().len(), 15);
    }

    #[test]
    fn dashes_are_doubled_in_endpoint_names() {
        let w = Workload::from_env(
            &env("K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=core-dns-1"),
            "node-a",
        );
        assert_eq!(w.endpoint_name(), "node--a-k8s-core--dns--1-eth0");
    }

    #[test]
    fn without_kubernetes_the_container_id_names_things() {
        let w = Workload::from_env(&env(""), "n1");
        assert_eq!(w.orchestrator, "cni");
        assert_eq!(w.endpoint_name(), "n1-cni-abc123-eth0");
        assert_eq!(w.host_veth(), veth_name("abc123"));
        assert_eq!(w.namespace, "default");
    }
}
