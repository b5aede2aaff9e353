package migrate

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	v1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/pkg/config"
)

// Options shape the output.
type Options struct {
	// Namespace is Herald's namespace; every object written goes there.
	Namespace string
}

// Document is one YAML or JSON document of the input.
type Document struct {
	// Source says where the document came from, for error messages.
	Source string
	// JSON is the document's content as JSON.
	JSON []byte
}

// Warning is a MetalLB setting that was not carried over as it was.
type Warning struct {
	// Object names the MetalLB object: its kind, then namespace/name.
	Object string
	// Field is the path of the setting within the object; empty when the
	// warning is about the whole object.
	Field string
	// Message says what happened to the setting and what to do about it.
	Message string
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Object + ": " + w.Message
	}
	return w.Object + ": " + w.Field + ": " + w.Message
}

// Result is the migrated configuration.
type Result struct {
	// Objects are Herald's objects, each kind sorted by name, all in
	// Options.Namespace.
	Objects config.Objects
	// Warnings list every setting not carried over as it was, in the
	// order the objects were converted.
	Warnings []Warning
}

// ReadDocuments splits a stream of YAML documents (or one JSON document)
// into Documents, skipping empty ones. source names the stream in errors.
func ReadDocuments(r io.Reader, source string) ([]Document, error) {
	var out []Document
	rd := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 1; ; i++ {
		b, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue // only comments or an empty document between separators
		}
		out = append(out, Document{Source: fmt.Sprintf("%s: document %d", source, i), JSON: j})
	}
}

// MetalLB's API group and the kinds of it that hold configuration.
const metallbGroup = "metallb.io"

const (
	kindIPAddressPool    = "IPAddressPool"
	kindAddressPool      = "AddressPool"
	kindL2Advertisement  = "L2Advertisement"
	kindBGPAdvertisement = "BGPAdvertisement"
	kindBGPPeer          = "BGPPeer"
	kindCommunity        = "Community"
	kindBFDProfile       = "BFDProfile"
)

// conversionOrder converts the kinds others refer to first: community
// aliases may be renamed, and the advertisements must follow.
var conversionOrder = []string{kindCommunity, kindBFDProfile, kindIPAddressPool, kindAddressPool, kindBGPPeer, kindL2Advertisement, kindBGPAdvertisement}

// statusKinds are MetalLB's runtime records, not configuration: Herald's
// speakers write their own, so they are skipped without a word.
var statusKinds = []string{"ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"}

// legacyKeys are the top-level keys of the pre-0.13 ConfigMap's config.
var legacyKeys = []string{"address-pools", "peers", "bgp-communities", "bfd-profiles"}

// object is the part of an input document the migration reads.
type object struct {
	source     string
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec  json.RawMessage   `json:"spec"`
	Data  map[string]string `json:"data"`
	Items []json.RawMessage `json:"items"`

	// legacy is the text of a pre-0.13 configuration: the ConfigMap's
	// "config" key, or the whole document when it is bare (the data
	// without the ConfigMap around it).
	legacy []byte
	bare   bool
}

// ref names the object in warnings and errors.
func (o *object) ref() string {
	if o.bare {
		return "legacy configuration (" + o.source + ")"
	}
	name := o.Metadata.Name
	if o.Metadata.Namespace != "" {
		name = o.Metadata.Namespace + "/" + name
	}
	return o.Kind + " " + name
}

func (o *object) group() string {
	g, _, _ := strings.Cut(o.APIVersion, "/")
	if !strings.Contains(o.APIVersion, "/") {
		return "" // the core group: "v1"
	}
	return g
}

type migration struct {
	ns    string
	out   config.Objects
	warns []Warning
	// seen holds kind/name of every object written, to catch duplicates.
	seen map[string]string
	// aliases maps community alias names that had to change to their new
	// names, so advertisements that use them follow.
	aliases map[string]string
	// bfdNames does the same for legacy BFD profile names.
	bfdNames map[string]string
}

// Migrate converts the MetalLB objects among docs into Herald's. Documents
// that are not MetalLB configuration are skipped with a Warning; an error is
// returned only for input that cannot be read (malformed documents, values
// of the wrong type).
func Migrate(docs []Document, opts Options) (*Result, error) {
	if opts.Namespace == "" {
		return nil, errors.New("migrate: Options.Namespace is empty")
	}
	m := &migration{ns: opts.Namespace, seen: map[string]string{}, aliases: map[string]string{}, bfdNames: map[string]string{}}
	var objs []*object
	for _, d := range docs {
		if err := m.collect(d.Source, d.JSON, &objs); err != nil {
			return nil, err
		}
	}
	byKind := map[string][]*object{}
	var legacy []*object
	for _, o := range objs {
		switch {
		case o.legacy != nil:
			legacy = append(legacy, o)
		case o.group() == metallbGroup && slices.Contains(conversionOrder, o.Kind):
			byKind[o.Kind] = append(byKind[o.Kind], o)
		case o.group() == metallbGroup && slices.Contains(statusKinds, o.Kind):
			// Runtime records, not configuration.
		case o.group() == metallbGroup || strings.HasSuffix(o.group(), "."+metallbGroup):
			// Other MetalLB kinds, and FRR-K8s's (frrk8s.metallb.io).
			m.warn(o.ref(), "", "kind %s of %s is not migrated: Herald has no equivalent", o.Kind, o.group())
		default:
			m.warn(o.ref(), "", "skipped: not MetalLB configuration")
		}
	}
	if len(byKind) > 0 {
		for _, o := range legacy {
			m.warn(o.ref(), "", "skipped: the input also holds metallb.io resources, which MetalLB 0.13 and later use instead of this ConfigMap; migrate the ConfigMap on its own if it is the configuration in force")
		}
		legacy = nil
	}
	for _, o := range legacy {
		if err := m.legacyConfig(o); err != nil {
			return nil, err
		}
	}
	for _, kind := range conversionOrder {
		for _, o := range byKind[kind] {
			if o.Metadata.Name == "" {
				return nil, fmt.Errorf("%s (%s): metadata.name is empty", o.Kind, o.source)
			}
			if err := m.convert(o); err != nil {
				return nil, err
			}
		}
	}
	m.sort()
	return &Result{Objects: m.out, Warnings: m.warns}, nil
}

// collect parses one document into objs, unwrapping lists (kubectl get -o
// yaml writes a v1 List).
func (m *migration) collect(source string, doc []byte, objs *[]*object) error {
	var top map[string]json.RawMessage
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(doc, &top); err != nil {
		return fmt.Errorf("%s: not an object: %w", source, err)
	}
	if top["kind"] == nil && top["apiVersion"] == nil {
		for _, k := range legacyKeys {
			if top[k] != nil {
				*objs = append(*objs, &object{source: source, legacy: doc, bare: true})
				return nil
			}
		}
		return fmt.Errorf("%s: neither a Kubernetes object (no apiVersion and kind) nor a MetalLB configuration (no %s)", source, strings.Join(legacyKeys, ", "))
	}
	o := &object{source: source}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(doc, o); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if o.Kind == "List" || (strings.HasSuffix(o.Kind, "List") && top["items"] != nil) {
		for i, item := range o.Items {
			if err := m.collect(fmt.Sprintf("%s, item %d", source, i+1), item, objs); err != nil {
				return err
			}
		}
		return nil
	}
	if o.group() == "" && o.Kind == "ConfigMap" {
		cfg, ok := o.Data["config"]
		if !ok {
			m.warn(o.ref(), "", "skipped: a ConfigMap without the key \"config\" is not MetalLB's configuration")
			return nil
		}
		o.legacy = []byte(cfg)
	}
	*objs = append(*objs, o)
	return nil
}

func (m *migration) warn(object, field, format string, args ...any) {
	m.warns = append(m.warns, Warning{Object: object, Field: field, Message: fmt.Sprintf(format, args...)})
}

// decode reads raw into v and warns about every field v has no place for,
// so a MetalLB setting this package does not know is never lost silently.
func (m *migration) decode(ref, prefix string, raw []byte, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	strict, err := sigsjson.UnmarshalStrict(raw, v, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", ref, strings.TrimSuffix(prefix, "."), err)
	}
	for _, e := range strict {
		path := e.Error()
		var fe sigsjson.FieldError
		if errors.As(e, &fe) {
			path = fe.FieldPath()
		}
		m.warn(ref, prefix+path, "not known to heraldctl, so not carried over; check whether Herald offers an equivalent")
	}
	return nil
}

// add records that kind/name is written, and refuses a second object of the
// same kind and name (two input files defining it).
func (m *migration) add(ref, kind, name string) bool {
	key := kind + "/" + name
	if prev, dup := m.seen[key]; dup {
		m.warn(ref, "", "skipped: %s %q is already made from %s", kind, name, prev)
		return false
	}
	m.seen[key] = ref
	return true
}

func (m *migration) meta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: m.ns, Labels: maps.Clone(labels)}
}

func (m *migration) addPool(ref string, meta metav1.ObjectMeta, spec v1beta1.IPAddressPoolSpec) {
	if m.add(ref, kindIPAddressPool, meta.Name) {
		m.out.Pools = append(m.out.Pools, v1beta1.IPAddressPool{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) addL2(ref string, meta metav1.ObjectMeta, spec v1beta1.L2AdvertisementSpec) {
	if m.add(ref, kindL2Advertisement, meta.Name) {
		m.out.L2Advertisements = append(m.out.L2Advertisements, v1beta1.L2Advertisement{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) addBGP(ref string, meta metav1.ObjectMeta, spec v1beta1.BGPAdvertisementSpec) {
	if m.add(ref, kindBGPAdvertisement, meta.Name) {
		m.out.BGPAdvertisements = append(m.out.BGPAdvertisements, v1beta1.BGPAdvertisement{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) addPeer(ref string, meta metav1.ObjectMeta, spec v1beta1.BGPPeerSpec) {
	if m.add(ref, kindBGPPeer, meta.Name) {
		m.out.BGPPeers = append(m.out.BGPPeers, v1beta1.BGPPeer{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) addCommunity(ref string, meta metav1.ObjectMeta, spec v1beta1.CommunitySpec) {
	if m.add(ref, kindCommunity, meta.Name) {
		m.out.Communities = append(m.out.Communities, v1beta1.Community{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) addBFD(ref string, meta metav1.ObjectMeta, spec v1beta1.BFDProfileSpec) {
	if m.add(ref, kindBFDProfile, meta.Name) {
		m.out.BFDProfiles = append(m.out.BFDProfiles, v1beta1.BFDProfile{ObjectMeta: meta, Spec: spec})
	}
}

func (m *migration) sort() {
	slices.SortStableFunc(m.out.Pools, func(a, b v1beta1.IPAddressPool) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(m.out.L2Advertisements, func(a, b v1beta1.L2Advertisement) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(m.out.BGPAdvertisements, func(a, b v1beta1.BGPAdvertisement) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(m.out.BGPPeers, func(a, b v1beta1.BGPPeer) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(m.out.Communities, func(a, b v1beta1.Community) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortStableFunc(m.out.BFDProfiles, func(a, b v1beta1.BFDProfile) int { return cmp.Compare(a.Name, b.Name) })
}

// addresses normalizes a pool's address list, dropping (with a warning) the
// entries Herald cannot use, and the repeats Herald's schema (a set)
// refuses.
func (m *migration) addresses(ref, field string, in []string) []string {
	var out []string
	for i, s := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		a, note, err := normalizeAddress(s)
		if err != nil {
			m.warn(ref, f, "dropped: %v", err)
			continue
		}
		if note != "" {
			m.warn(ref, f, "%s", note)
		}
		if slices.Contains(out, a) {
			m.warn(ref, f, "dropped: %s is listed already", a)
			continue
		}
		out = append(out, a)
	}
	return out
}

// communityRefs rewrites an advertisement's communities: renamed aliases
// follow their new name, and literal values Herald cannot parse are dropped.
func (m *migration) communityRefs(ref, field string, in []string) []string {
	var out []string
	for i, c := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		if n, ok := m.aliases[c]; ok {
			c = n
		} else if strings.Contains(c, ":") {
			if _, _, err := config.ParseCommunity(c); err != nil {
				m.warn(ref, f, "dropped: %v", err)
				continue
			}
		}
		if slices.Contains(out, c) {
			m.warn(ref, f, "dropped: %s is listed already", c)
			continue
		}
		out = append(out, c)
	}
	return out
}
