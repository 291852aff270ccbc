package schema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// typeMask is a set of JSON types; integer is its own bit because "integer" accepts only
// the numbers that are whole.
type typeMask uint8

const (
	typeNull typeMask = 1 << iota
	typeBoolean
	typeString
	typeNumber
	typeInteger
	typeObject
	typeArray
)

var typeBits = map[string]typeMask{
	"null": typeNull, "boolean": typeBoolean, "string": typeString, "number": typeNumber,
	"integer": typeInteger, "object": typeObject, "array": typeArray,
}

// node is the fast form of one (sub)schema. Limits use -1 for "not set", like the
// reference.
type node struct {
	always *bool // boolean schema
	types  typeMask

	constant *constant
	enum     []constant

	format     func(any) bool
	isDateTime bool

	// object
	minProps, maxProps int
	props              []property // each says whether it is required
	requiredOther      []string   // required names that are not among props
	propIndex          map[string]struct{}
	patternProps       []patternProperty
	additional         *node // nil: allowed; always=false node: denied
	checkAdditional    bool

	// array
	minItems, maxItems int
	prefixItems        []*node
	items              *node

	// string
	minLength, maxLength int
	pattern              *memoPattern

	// number
	minimum, maximum, exclusiveMinimum, exclusiveMaximum *bound
	multipleOf                                           *divisor

	allOf, anyOf, oneOf []*node
	not                 *node
}

type property struct {
	name     string
	node     *node
	required bool
}

type patternProperty struct {
	re   *regexp.Regexp
	node *node
}

// unsupported carries the location of the keyword that keeps a schema off the fast path.
type unsupported struct{ where string }

// build compiles ref into a fast tree, or returns nil and the reason it cannot.
func build(ref *jsonschema.Schema) (n *node, why string) {
	defer func() {
		if r := recover(); r != nil {
			u, ok := r.(unsupported)
			if !ok {
				panic(r)
			}
			n, why = nil, u.where
		}
	}()
	return buildNode(ref), ""
}

func buildNode(s *jsonschema.Schema) *node {
	refuse := func(keyword string) { panic(unsupported{s.Location + "/" + keyword}) }
	switch {
	case s.Ref != nil:
		refuse("$ref")
	case s.RecursiveRef != nil:
		refuse("$recursiveRef")
	case s.DynamicRef != nil:
		refuse("$dynamicRef")
	case s.If != nil:
		refuse("if")
	case s.PropertyNames != nil:
		refuse("propertyNames")
	case s.RegexProperties:
		refuse("patternProperties (draft 4 regex check)")
	case len(s.Dependencies) > 0:
		refuse("dependencies")
	case len(s.DependentRequired) > 0:
		refuse("dependentRequired")
	case len(s.DependentSchemas) > 0:
		refuse("dependentSchemas")
	case s.UnevaluatedProperties != nil:
		refuse("unevaluatedProperties")
	case s.UnevaluatedItems != nil:
		refuse("unevaluatedItems")
	case s.UniqueItems:
		refuse("uniqueItems")
	case s.AdditionalItems != nil:
		refuse("additionalItems")
	case s.Contains != nil:
		refuse("contains")
	case s.ContentEncoding != "" || s.ContentMediaType != "" || s.ContentSchema != nil:
		refuse("contentEncoding")
	case len(s.Extensions) > 0:
		refuse("extension keyword")
	}

	n := &node{
		always:   s.Always,
		minProps: s.MinProperties, maxProps: s.MaxProperties,
		minItems: s.MinItems, maxItems: s.MaxItems,
		minLength: s.MinLength, maxLength: s.MaxLength,
		pattern: newMemoPattern(s.Pattern),
	}
	for _, t := range s.Types {
		bit, ok := typeBits[t]
		if !ok {
			refuse("type")
		}
		n.types |= bit
	}
	if len(s.Constant) > 0 {
		c := compileConstant(s.Constant[0], refuse)
		n.constant = &c
	}
	for _, e := range s.Enum {
		n.enum = append(n.enum, compileConstant(e, refuse))
	}
	if s.Format != "" {
		// The reference checks a format only when its compiler found a checker; the
		// compilers built here have no private ones, so that is the shared registry.
		n.format = jsonschema.Formats[s.Format]
		n.isDateTime = s.Format == "date-time"
	}

	// The reference ranges over Go maps; sorting only makes the fast order stable.
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n.props = append(n.props, property{name: name, node: buildNode(s.Properties[name]), required: slices.Contains(s.Required, name)})
	}
	for _, name := range s.Required {
		if _, declared := s.Properties[name]; !declared {
			n.requiredOther = append(n.requiredOther, name)
		}
	}
	for re, sub := range s.PatternProperties {
		n.patternProps = append(n.patternProps, patternProperty{re, buildNode(sub)})
	}
	sort.Slice(n.patternProps, func(i, j int) bool {
		return n.patternProps[i].re.String() < n.patternProps[j].re.String()
	})
	switch ap := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		if !ap {
			n.additional = &node{always: &ap}
			n.checkAdditional = true
		}
	case *jsonschema.Schema:
		n.additional = buildNode(ap)
		n.checkAdditional = true
	default:
		refuse("additionalProperties")
	}
	if n.checkAdditional {
		n.propIndex = make(map[string]struct{}, len(n.props))
		for _, p := range n.props {
			n.propIndex[p.name] = struct{}{}
		}
	}

	switch items := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		n.items = buildNode(items)
	default:
		refuse("items (array form)")
	}
	if s.Items2020 != nil {
		if n.items != nil {
			refuse("items")
		}
		n.items = buildNode(s.Items2020)
	}
	for _, p := range s.PrefixItems {
		n.prefixItems = append(n.prefixItems, buildNode(p))
	}

	var ok bool
	if n.minimum, ok = newBound(s.Minimum); !ok {
		refuse("minimum")
	}
	if n.maximum, ok = newBound(s.Maximum); !ok {
		refuse("maximum")
	}
	if n.exclusiveMinimum, ok = newBound(s.ExclusiveMinimum); !ok {
		refuse("exclusiveMinimum")
	}
	if n.exclusiveMaximum, ok = newBound(s.ExclusiveMaximum); !ok {
		refuse("exclusiveMaximum")
	}
	if n.multipleOf, ok = newDivisor(s.MultipleOf); !ok {
		refuse("multipleOf")
	}

	for _, sub := range s.AllOf {
		n.allOf = append(n.allOf, buildNode(sub))
	}
	for _, sub := range s.AnyOf {
		n.anyOf = append(n.anyOf, buildNode(sub))
	}
	for _, sub := range s.OneOf {
		n.oneOf = append(n.oneOf, buildNode(sub))
	}
	if s.Not != nil {
		n.not = buildNode(s.Not)
	}
	return n
}

// constant is a const or enum value with its numbers precompiled for exact comparison.
type constant struct {
	kind typeMask // typeNumber for every number
	b    bool
	s    string
	num  *bound
	arr  []constant
	obj  map[string]*constant
}

func compileConstant(v any, refuse func(string)) constant {
	switch x := v.(type) {
	case nil:
		return constant{kind: typeNull}
	case bool:
		return constant{kind: typeBoolean, b: x}
	case string:
		return constant{kind: typeString, s: x}
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok {
			refuse("enum")
		}
		b, ok := newBound(r)
		if !ok {
			refuse("enum")
		}
		return constant{kind: typeNumber, num: b}
	case []any:
		c := constant{kind: typeArray, arr: make([]constant, len(x))}
		for i, e := range x {
			c.arr[i] = compileConstant(e, refuse)
		}
		return c
	case map[string]any:
		c := constant{kind: typeObject, obj: make(map[string]*constant, len(x))}
		for k, e := range x {
			ce := compileConstant(e, refuse)
			c.obj[k] = &ce
		}
		return c
	}
	refuse(fmt.Sprintf("enum (value of type %T)", v))
	return constant{}
}
