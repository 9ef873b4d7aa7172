package redisdb

import (
	"reflect"
	"testing"
)

func TestOptionsChooseTheTopology(t *testing.T) {
	cases := []struct {
		url      string
		addrs    []string
		master   string
		db       int
		password string
		wantErr  bool
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://:s3cret@cache:6380/2", addrs: []string{"cache:6380"}, db: 2, password: "s3cret"},
		{url: "redis://n1:6379?addr=n2:6379&addr=n3:6379", addrs: []string{"n1:6379", "n2:6379", "n3:6379"}},
		{url: "redis://s1:26379/1?addr=s2:26379&master_name=mymaster", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 1},
		{url: "http://example.com", wantErr: true},
		{url: "redis://h:6379/0?bogus=1", wantErr: true},
		{url: "::not a url", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			opts, err := Options(tc.url)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", opts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(opts.Addrs, tc.addrs) || opts.MasterName != tc.master || opts.DB != tc.db || opts.Password != tc.password {
				t.Fatalf("got addrs %v master %q db %d password %q", opts.Addrs, opts.MasterName, opts.DB, opts.Password)
			}
		})
	}
}
