package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSourceFilter(t *testing.T) {
	cases := []struct {
		name           string
		allow, trusted []string
		remote, xff    string
		want           string
		ok             bool
	}{
		{"off admits all", nil, nil, "1.2.3.4:5", "", "1.2.3.4", true},
		{"allowed directly", []string{"argyle"}, nil, "34.27.251.226:443", "", "34.27.251.226", true},
		{"not allowed", []string{"argyle"}, nil, "1.2.3.4:5", "", "1.2.3.4", false},
		{"forwarded header ignored without a trusted proxy", []string{"argyle"}, nil, "1.2.3.4:5", "34.27.251.226", "1.2.3.4", false},
		{"through a trusted proxy", []string{"argyle"}, []string{"10.0.0.0/8"}, "10.1.2.3:5", "34.122.50.253", "34.122.50.253", true},
		{"spoofed hop left of the real one", []string{"argyle"}, []string{"10.0.0.0/8"}, "10.1.2.3:5", "34.122.50.253, 6.6.6.6", "6.6.6.6", false},
		{"two trusted proxies", []string{"argyle"}, []string{"10.0.0.0/8"}, "10.1.2.3:5", "35.226.53.251, 10.9.9.9", "35.226.53.251", true},
		{"unreadable hop", []string{"argyle"}, []string{"10.0.0.0/8"}, "10.1.2.3:5", "35.226.53.251, junk", "invalid IP", false},
		{"CIDR and single address", []string{"192.168.0.0/16", "127.0.0.1"}, nil, "127.0.0.1:9", "", "127.0.0.1", true},
		{"IPv4-mapped IPv6 peer", []string{"127.0.0.1"}, nil, "[::ffff:127.0.0.1]:9", "", "127.0.0.1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := NewSourceFilter(c.allow, c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			src, ok := f.Admit(r)
			if src.String() != c.want || ok != c.ok {
				t.Errorf("Admit = %s, %v; want %s, %v", src, ok, c.want, c.ok)
			}
		})
	}
	if _, err := NewSourceFilter([]string{"not-an-ip"}, nil); err == nil || !strings.Contains(err.Error(), "webhook-allow-sources") {
		t.Errorf("bad allow-list: %v", err)
	}
	if _, err := NewSourceFilter(nil, []string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
		t.Errorf("bad trusted proxy: %v", err)
	}
}
