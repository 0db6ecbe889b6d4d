package service

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// queryEnum is a REST query parameter that takes enum values, on the
// paths that begin with pathPrefix: "statuses" means a message's status
// under /v1/endpoints/ and an item's under /v1/items/.
type queryEnum struct {
	param, pathPrefix string
	enum              protoreflect.EnumDescriptor
}

var queryEnums = []queryEnum{
	{"states", "/", ahv1.HealthState(0).Descriptor()},
	{"kinds", "/", ahv1.TransitionKind(0).Descriptor()},
	{"freshness", "/", ahv1.FreshnessStatus(0).Descriptor()},           // ListAccountHealth
	{"statuses", "/v1/endpoints/", ahv1.MessageStatus(0).Descriptor()}, // ListMessages
	{"statuses", "/v1/items/", ahv1.ItemStatus(0).Descriptor()},        // ListItemHealth
	// ListAccountHealth's order, by its JSON and its proto name.
	{"orderBy", "/", ahv1.AccountOrder(0).Descriptor()},
	{"order_by", "/", ahv1.AccountOrder(0).Descriptor()},
}

// shortEnumNames lets REST callers write enum values as the CLI does:
// AUTH_FAILED or auth_failed for HEALTH_STATE_AUTH_FAILED. A value that is
// none is refused here, naming the values there are.
func shortEnumNames(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		changed := false
		for _, qe := range queryEnums {
			if !strings.HasPrefix(r.URL.Path, qe.pathPrefix) {
				continue
			}
			key, ed := qe.param, qe.enum
			for i, v := range q[key] {
				full, ok := fullEnumName(ed, v)
				if !ok {
					writeError(r.Context(), logger, w, invalidArgument(key, `"`+v+`" is not one of `+strings.Join(shortNames(ed), ", ")))
					return
				}
				if full != v {
					q[key][i], changed = full, true
				}
			}
		}
		if changed {
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

// enumPrefix is what an enum's value names start with: its zero value's
// name without UNSPECIFIED (HEALTH_STATE_).
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	return strings.TrimSuffix(string(ed.Values().Get(0).Name()), "UNSPECIFIED")
}

func fullEnumName(ed protoreflect.EnumDescriptor, v string) (string, bool) {
	if n, err := strconv.Atoi(v); err == nil && n != 0 && ed.Values().ByNumber(protoreflect.EnumNumber(n)) != nil {
		return v, true
	}
	for _, name := range []string{v, strings.ToUpper(v), enumPrefix(ed) + strings.ToUpper(v)} {
		if ev := ed.Values().ByName(protoreflect.Name(name)); ev != nil && ev.Number() != 0 {
			return name, true
		}
	}
	return v, false
}

func shortNames(ed protoreflect.EnumDescriptor) []string {
	var out []string
	for i := 1; i < ed.Values().Len(); i++ {
		out = append(out, strings.TrimPrefix(string(ed.Values().Get(i).Name()), enumPrefix(ed)))
	}
	return out
}
