package qwen3

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// RopeScaling holds YaRN's parameters as config.json gives them. Zero
// means absent: transformers then derives the value (see
// yarnFrequencies), and a zero given explicitly means the same there
// (`beta_fast or 32`).
type RopeScaling struct {
	Type                          string  // "yarn"
	Factor                        float64 // context multiplier; 0: max_position_embeddings / original
	OriginalMaxPositionEmbeddings int     // the pretraining context
	AttentionFactor               float64 // multiplies cos and sin; 0: 0.1·ln(factor) + 1
	BetaFast, BetaSlow            float64 // ramp ends in turns over the original context; 0: 32 and 1
	Mscale, MscaleAllDim          float64 // DeepSeek's attention-factor variant; 0: unused
	NoTruncate                    bool    // "truncate": false keeps the ramp ends fractional
}

// parseRope reads the RoPE settings the way transformers 5 standardises
// them: the parameters come from "rope_scaling" (transformers 4, the
// published Qwen3 checkpoints) or "rope_parameters" (transformers 5), with
// rope_theta inside that object or at the top level. A scaling type is
// never dropped: anything other than plain RoPE or YaRN is refused.
func parseRope(present map[string]json.RawMessage, c *Config) error {
	isSet := func(m map[string]json.RawMessage, k string) bool {
		v, ok := m[k]
		return ok && string(v) != "null"
	}
	field := ""
	switch {
	case isSet(present, "rope_scaling") && isSet(present, "rope_parameters"):
		return fmt.Errorf("both rope_scaling and rope_parameters are set: give the RoPE parameters once")
	case isSet(present, "rope_scaling"):
		field = "rope_scaling"
	case isSet(present, "rope_parameters"):
		field = "rope_parameters"
	}
	params := map[string]json.RawMessage{}
	if field != "" {
		if err := json.Unmarshal(present[field], &params); err != nil || params == nil {
			return fmt.Errorf("field %q: want an object, got %s", field, compact(present[field]))
		}
	}
	num := func(m map[string]json.RawMessage, k, where string) (float64, bool, error) {
		if !isSet(m, k) {
			return 0, false, nil
		}
		var v float64
		if err := json.Unmarshal(m[k], &v); err != nil {
			return 0, false, fmt.Errorf("%s%s: want a number, got %s", where, k, compact(m[k]))
		}
		return v, true, nil
	}
	str := func(k string) (string, error) {
		if !isSet(params, k) {
			return "", nil
		}
		var v string
		if err := json.Unmarshal(params[k], &v); err != nil {
			return "", fmt.Errorf("%s.%s: want a string, got %s", field, k, compact(params[k]))
		}
		return v, nil
	}
	at := field + "."

	ropeType, err := str("rope_type")
	if err != nil {
		return err
	}
	legacyType, err := str("type")
	if err != nil {
		return err
	}
	switch {
	case ropeType == "":
		ropeType = legacyType
	case legacyType != "" && legacyType != ropeType:
		return fmt.Errorf("%s: rope_type %q and type %q disagree", field, ropeType, legacyType)
	}
	if ropeType == "" {
		ropeType = "default"
	}

	top, topSet, err := num(present, "rope_theta", "")
	if err != nil {
		return err
	}
	inner, innerSet, err := num(params, "rope_theta", at)
	if err != nil {
		return err
	}
	switch {
	case innerSet && topSet && inner != top:
		return fmt.Errorf("rope_theta %g and %srope_theta %g disagree", top, at, inner)
	case innerSet:
		c.RopeTheta = inner
	case topSet:
		c.RopeTheta = top
	default:
		return fmt.Errorf("missing field \"rope_theta\" (or rope_parameters.rope_theta)")
	}
	for _, m := range []struct {
		m     map[string]json.RawMessage
		where string
	}{{present, ""}, {params, at}} {
		if p, ok, err := num(m.m, "partial_rotary_factor", m.where); err != nil {
			return err
		} else if ok && p != 1 {
			return fmt.Errorf("unsupported: %spartial_rotary_factor %g (Qwen3 rotates the whole head)", m.where, p)
		}
	}

	allowed := map[string]bool{"rope_type": true, "type": true, "rope_theta": true, "partial_rotary_factor": true}
	switch ropeType {
	case "default":
	case "yarn":
		for _, k := range []string{"factor", "original_max_position_embeddings", "attention_factor",
			"beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"} {
			allowed[k] = true
		}
		s, err := parseYarn(present, params, at, num)
		if err != nil {
			return err
		}
		c.RopeScaling = s
	default:
		return fmt.Errorf("unsupported: %srope_type %q (only default RoPE and yarn)", at, ropeType)
	}
	var unknown []string
	for k := range params {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unsupported: %s%s with rope_type %q", at, unknown[0], ropeType)
	}
	return nil
}

type numField func(m map[string]json.RawMessage, k, where string) (float64, bool, error)

// parseYarn reads YaRN's keys. The original context comes, as in
// transformers, from a top-level original_max_position_embeddings first,
// then from the object, then from max_position_embeddings.
func parseYarn(present, params map[string]json.RawMessage, at string, num numField) (*RopeScaling, error) {
	s := &RopeScaling{Type: "yarn"}
	orig, ok, err := num(present, "original_max_position_embeddings", "")
	if err != nil {
		return nil, err
	}
	if !ok {
		if orig, ok, err = num(params, "original_max_position_embeddings", at); err != nil {
			return nil, err
		}
	}
	if !ok {
		if orig, _, err = num(present, "max_position_embeddings", ""); err != nil {
			return nil, err
		}
	}
	if orig != math.Trunc(orig) || !(orig >= 1) || orig > math.MaxInt32 {
		return nil, fmt.Errorf("%soriginal_max_position_embeddings must be a positive integer, got %g", at, orig)
	}
	s.OriginalMaxPositionEmbeddings = int(orig)
	for _, f := range []struct {
		key string
		dst *float64
	}{{"factor", &s.Factor}, {"attention_factor", &s.AttentionFactor}, {"beta_fast", &s.BetaFast},
		{"beta_slow", &s.BetaSlow}, {"mscale", &s.Mscale}, {"mscale_all_dim", &s.MscaleAllDim}} {
		v, _, err := num(params, f.key, at)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s%s must be finite", at, f.key)
		}
		*f.dst = v
	}
	if _, ok := params["factor"]; !ok {
		return nil, fmt.Errorf("missing field %q for rope_type yarn", at+"factor")
	}
	if s.Factor != 0 && s.Factor < 1 {
		return nil, fmt.Errorf("%sfactor must be >= 1, got %g", at, s.Factor)
	}
	if s.AttentionFactor < 0 || s.BetaFast < 0 || s.BetaSlow < 0 {
		return nil, fmt.Errorf("%sattention_factor, beta_fast and beta_slow must be >= 0", at)
	}
	if v, ok := params["truncate"]; ok && string(v) != "null" {
		var t bool
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("%struncate: want true or false, got %s", at, compact(v))
		}
		s.NoTruncate = !t
	}
	return s, nil
}
