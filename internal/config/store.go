package config

import (
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Store configures the deployment store (node setting): the embedded bbolt
// file (the default), or an etcd cluster shared by a fleet of nodes.
type Store struct {
	// Path is the bbolt file. Default "turnout.db" in the working directory.
	// With Etcd there is no bbolt file: Path names this node's own files,
	// <path>.token (a generated admin token) and <path>.cache (the last
	// deployment it served, which it serves at a start while etcd is
	// unreachable).
	Path string `yaml:"path" json:"path,omitempty"`
	// Etcd, when set, keeps deployments, the active pointer, the audit trail
	// and the nodes' acknowledgements in an etcd cluster that every node of
	// the fleet points at.
	Etcd *Etcd `yaml:"etcd" json:"etcd,omitempty"`
}

// Etcd says which etcd cluster a fleet shares and how to reach it.
type Etcd struct {
	// Endpoints are the client URLs of the etcd members,
	// like http://10.0.0.1:2379. Required.
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Prefix is put before every key, so that several fleets can share
	// one cluster. It ends with "/". Default "/turnout/".
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// DialTimeout bounds connecting to etcd and each request to it: past
	// it a change fails, saying etcd is unavailable. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout" json:"dial_timeout,omitempty"`
	// Username and Password log in to a cluster with auth enabled. Both or
	// neither. The password is kept in every deployment of this config:
	// prefer TLS client certificates.
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"password,omitempty"`
	// TLS connects over TLS; endpoints are then https URLs.
	TLS *EtcdTLS `yaml:"tls" json:"tls,omitempty"`
}

// EtcdTLS is how a node connects to etcd over TLS: CA verifies etcd's
// certificate (default: the system's roots); Cert and Key, both or neither,
// are a client certificate for etcd's --client-cert-auth.
type EtcdTLS struct {
	CA   string `yaml:"ca" json:"ca,omitempty"`
	Cert string `yaml:"cert" json:"cert,omitempty"`
	Key  string `yaml:"key" json:"key,omitempty"`
}

// Node names this node among a fleet's (node setting).
type Node struct {
	// Name identifies the node in `turnout nodes` and its acknowledgements:
	// stable across restarts, one per node. Default: the host name.
	Name string `yaml:"name" json:"name,omitempty"`
}

// NodeName returns Node.Name, or the host name when it is unset ("turnout"
// when the host has none).
func (c *Config) NodeName() string {
	if c.Node.Name != "" {
		return c.Node.Name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "turnout"
}

const (
	defaultEtcdPrefix      = "/turnout/"
	defaultEtcdDialTimeout = Duration(5 * time.Second)
)

var (
	storeKeys   = []string{"path", "etcd"}
	etcdKeys    = []string{"endpoints", "prefix", "dial_timeout", "username", "password", "tls"}
	etcdTLSKeys = []string{"ca", "cert", "key"}
	nodeKeys    = []string{"name"}
)

// store decodes the store section.
func (d *decoder) store(v *yaml.Node, s *Store) {
	d.fields(v, "store", storeKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "path":
			s.Path, _ = d.name(v, "store.path")
		case "etcd":
			s.Etcd = d.etcd(v)
		}
	})
}

// etcd decodes store.etcd.
func (d *decoder) etcd(n *yaml.Node) *Etcd {
	e := &Etcd{}
	var userAt, passAt, endpointsAt Pos
	var endpoints []*yaml.Node // the valid ones, in step with e.Endpoints
	var indexes []int          // their indexes in the list written
	ok := d.fields(n, "store.etcd", etcdKeys, func(key string, k, v *yaml.Node) {
		what := "store.etcd." + key
		switch key {
		case "endpoints":
			endpointsAt = d.pos(k)
			items, _ := d.list(v, what, "[http://10.0.0.1:2379, http://10.0.0.2:2379, http://10.0.0.3:2379]")
			for i, it := range items {
				if s, ok := d.str(it, what+"[]"); ok && d.etcdEndpoint(it, i, s) {
					e.Endpoints = append(e.Endpoints, s)
					endpoints, indexes = append(endpoints, it), append(indexes, i)
				}
			}
			if items != nil && len(items) == 0 {
				d.errorf(v, "%s is empty: list the client URLs of the etcd members, like [http://10.0.0.1:2379]", what)
			}
		case "prefix":
			if s, ok := d.name(v, what); ok {
				if !strings.HasSuffix(s, "/") {
					d.errorf(v, "%s %q must end with /, like /turnout/: every key is the prefix then a name", what, s)
				} else {
					e.Prefix = s
				}
			}
		case "dial_timeout":
			d.duration(v, what, &e.DialTimeout, "the default 5s")
		case "username":
			userAt = d.pos(k)
			e.Username, _ = d.name(v, what)
		case "password":
			passAt = d.pos(k)
			e.Password, _ = d.name(v, what)
		case "tls":
			e.TLS = d.etcdTLS(v)
		}
	})
	if !ok {
		return e
	}
	if endpointsAt == (Pos{}) {
		d.errorf(n, "store.etcd has no endpoints: add endpoints: with the client URLs of the etcd members, like [http://10.0.0.1:2379]")
	}
	switch {
	case userAt != (Pos{}) && passAt == (Pos{}):
		d.errorAt(userAt, "store.etcd sets username without password: add password:, or remove username")
	case passAt != (Pos{}) && userAt == (Pos{}):
		d.errorAt(passAt, "store.etcd sets password without username: add username:, or remove password")
	}
	for j, it := range endpoints {
		s, i := e.Endpoints[j], indexes[j]
		secure := strings.HasPrefix(s, "https://")
		switch {
		case secure && e.TLS == nil:
			d.errorf(it, "store.etcd.endpoints[%d] %q is https: add store.etcd.tls (ca: the CA file that signed etcd's certificate)", i, s)
		case !secure && e.TLS != nil:
			d.errorf(it, "store.etcd.endpoints[%d] %q is plain http while store.etcd.tls is set: write https://", i, s)
		}
	}
	return e
}

// etcdEndpoint reports why s cannot be an etcd client URL.
func (d *decoder) etcdEndpoint(n *yaml.Node, i int, s string) bool {
	u, err := url.Parse(s)
	switch {
	case err != nil || !strings.Contains(s, "://"):
		d.errorf(n, "store.etcd.endpoints[%d] %q is not a URL: write it like http://10.0.0.1:2379", i, s)
	case u.Scheme != "http" && u.Scheme != "https":
		d.errorf(n, "store.etcd.endpoints[%d] %q has scheme %q: use http or https", i, s, u.Scheme)
	case u.Hostname() == "" || u.Port() == "":
		d.errorf(n, "store.etcd.endpoints[%d] %q needs a host and a port, like http://10.0.0.1:2379", i, s)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		d.errorf(n, "store.etcd.endpoints[%d] %q must be scheme://host:port only: credentials go in username and password", i, s)
	default:
		return true
	}
	return false
}

// etcdTLS decodes store.etcd.tls.
func (d *decoder) etcdTLS(n *yaml.Node) *EtcdTLS {
	t := &EtcdTLS{}
	var certAt, keyAt Pos
	ok := d.fields(n, "store.etcd.tls", etcdTLSKeys, func(key string, k, v *yaml.Node) {
		what := "store.etcd.tls." + key
		switch key {
		case "ca":
			t.CA, _ = d.name(v, what)
		case "cert":
			certAt = d.pos(k)
			t.Cert, _ = d.name(v, what)
		case "key":
			keyAt = d.pos(k)
			t.Key, _ = d.name(v, what)
		}
	})
	if !ok {
		return t
	}
	switch {
	case certAt != (Pos{}) && keyAt == (Pos{}):
		d.errorAt(certAt, "store.etcd.tls sets cert without key: add key: with the client certificate's PEM private key file")
	case keyAt != (Pos{}) && certAt == (Pos{}):
		d.errorAt(keyAt, "store.etcd.tls sets key without cert: add cert: with the PEM client certificate file")
	}
	return t
}

// node decodes the node section.
func (d *decoder) node(v *yaml.Node, n *Node) {
	d.fields(v, "node", nodeKeys, func(_ string, _, v *yaml.Node) {
		s, ok := d.name(v, "node.name")
		if !ok {
			return
		}
		if !isNodeName(s) {
			d.errorf(v, "node.name %q is not a node name: use letters, digits, '-', '_' and '.', like edge-1 or the host name", s)
			return
		}
		n.Name = s
	})
}

// isNodeName reports whether s can name a node: it is a key in the store,
// a metric label and a CLI argument, so one plain word (a host name fits).
func isNodeName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// storeDefaults fills in the store's defaults: the bbolt path unless the
// store is etcd, etcd's prefix and timeout when it is.
func storeDefaults(s Store) Store {
	if s.Etcd == nil {
		s.Path = orDefault(s.Path, defaultStorePath)
		return s
	}
	e := *s.Etcd
	e.Endpoints = append([]string(nil), e.Endpoints...)
	e.Prefix = orDefault(e.Prefix, defaultEtcdPrefix)
	e.DialTimeout = orDefault(e.DialTimeout, defaultEtcdDialTimeout)
	if e.TLS != nil {
		t := *e.TLS
		e.TLS = &t
	}
	s.Etcd = &e
	return s
}
