package main

import (
	"fmt"
	"slices"
	"strings"
)

// The roles, in the order callers come before callees: the gateway calls
// auth, which calls user and apikey.
var allRoles = []string{"gateway", "auth", "user", "apikey"}

// roles is the set of roles one process serves.
type roles map[string]bool

// parseRoles reads `moreid serve`'s arguments: role names (repeats are
// harmless), "all", or nothing, which means every role.
func parseRoles(args []string) (roles, error) {
	r := roles{}
	for _, a := range args {
		switch {
		case a == "all":
			for _, name := range allRoles {
				r[name] = true
			}
		case slices.Contains(allRoles, a):
			r[a] = true
		default:
			return nil, fmt.Errorf("unknown role %q (roles: %s, or all)", a, strings.Join(allRoles, ", "))
		}
	}
	if len(r) == 0 {
		return parseRoles([]string{"all"})
	}
	return r, nil
}

// list is the roles in caller-to-callee order.
func (r roles) list() []string {
	var out []string
	for _, name := range allRoles {
		if r[name] {
			out = append(out, name)
		}
	}
	return out
}

// name is what the process calls itself in its logs, metrics and traces: the
// role when it serves one (as each component always did), "moreid" when it
// serves several.
func (r roles) name() string {
	if l := r.list(); len(l) == 1 {
		return l[0]
	}
	return "moreid"
}
