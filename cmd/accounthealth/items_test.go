package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accounthealth/accounthealth/server/health"
)

// onItemJSON is updatedJSON with the account object on item.
func onItemJSON(item, account, status, code string, at time.Time) []byte {
	b := updatedJSON(account, "user-"+account, status, code, at)
	return bytes.Replace(b, []byte(`"resource":{`), []byte(`"resource":{"item":"`+item+`",`), 1)
}

// TestWebhooksItemsSync: 70 items in use make three items.updated
// subscriptions (30, 30, 10), and running again changes nothing; an item
// whose accounts are all removed is not subscribed to, nor are the other
// subscriptions touched.
func TestWebhooksItemsSync(t *testing.T) {
	p := startProvider(t, nil)
	s := serve(t, t.TempDir())
	now := time.Now()
	for n := range 70 {
		if code := s.post(t, onItemJSON(fmt.Sprintf("item_%09d", n), fmt.Sprintf("acct-%d", n), "connected", "", now)); code != 200 {
			t.Fatalf("delivery %d: %d", n, code)
		}
	}
	s.post(t, onItemJSON("item_gone", "acct-gone", "connected", "", now))
	s.post(t, []byte(`{"event":"accounts.removed","name":"t","data":{"account":"acct-gone","user":"user-acct-gone"}}`))
	p.webhooks(t, exitOK, nil, "create", "--url", hooksURL)

	sync := []string{"items", "sync", "--url", hooksURL, "--server", s.grpc}
	stdout, _ := p.webhooks(t, exitOK, nil, sync...)
	if !strings.Contains(stdout, "70 items in use, in 3 items.updated subscriptions: 0 kept, 3 created, 0 deleted") {
		t.Errorf("first sync said:\n%s", stdout)
	}
	itemSubs := func() (ids []string, sizes []int) {
		listed := map[string]bool{}
		for _, w := range p.subscriptions(t) {
			if !slices.Equal(w.Events, []string{health.EventItemsUpdated}) {
				continue
			}
			ids, sizes = append(ids, w.ID), append(sizes, len(w.Config.Items))
			for _, it := range w.Config.Items {
				if listed[it] || it == "item_gone" {
					t.Errorf("item %s listed twice, or though unused", it)
				}
				listed[it] = true
			}
		}
		slices.Sort(sizes)
		return ids, sizes
	}
	ids, sizes := itemSubs()
	if fmt.Sprint(sizes) != "[10 30 30]" || len(p.subscriptions(t)) != 4 {
		t.Fatalf("items.updated subscriptions of %v items, %d in all; want 10, 30 and 30 beside the account one", sizes, len(p.subscriptions(t)))
	}

	stdout, _ = p.webhooks(t, exitOK, nil, sync...)
	if !strings.Contains(stdout, "70 items in use, in 3 items.updated subscriptions: 3 kept, 0 created, 0 deleted") {
		t.Errorf("second sync said:\n%s", stdout)
	}
	if again, _ := itemSubs(); !slices.Equal(again, ids) {
		t.Errorf("the second sync changed the subscriptions: %v, then %v", ids, again)
	}
}
