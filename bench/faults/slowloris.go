package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Slowloris flood: -slowloris connections to the engine's API, each sending a request's
// headers one line every 5 s and never finishing them, for as long as the pipeline runs
// (at least floodAtLeast, at most floodFor). Meanwhile a normal GET /-/healthy is tried every 2 s with a 3 s
// timeout. Only 127.0.0.1, only the engine's own port.
const (
	floodFor      = 90 * time.Second
	floodAtLeast  = 15 * time.Second // probes go on this long even when the pipeline is done sooner
	floodInterval = 5 * time.Second
)

func driveSlowloris(ctx context.Context, r *run) error {
	if !r.waitFirstProgress(ctx) {
		return ctx.Err()
	}
	e := r.currentEngine()
	addr := r.apiAddr
	floodCtx, cancel := context.WithTimeout(ctx, floodFor)
	defer cancel()
	var opened, refused, closedByServer atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < r.o.Slowloris; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowConn(floodCtx, addr, &opened, &refused, &closedByServer)
		}()
		if i%100 == 99 {
			time.Sleep(100 * time.Millisecond) // 1,000 connections over about a second
		}
	}
	time.Sleep(2 * time.Second)
	probes, answered := 0, 0
	firstAnswered := false
	cl := &http.Client{Timeout: 3 * time.Second}
	floodStart := time.Now()
	for floodCtx.Err() == nil && (time.Since(floodStart) < floodAtLeast || !r.isIdle()) {
		probes++
		if resp, err := cl.Get(e.api + "/-/healthy"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				answered++
				if probes == 1 {
					firstAnswered = true
				}
			}
		}
		sleepCtx(floodCtx, 2*time.Second)
	}
	held := opened.Load() - closedByServer.Load()
	cancel()
	wg.Wait()
	r.note("slowloris: %d of %d connections opened (%d refused), %d closed by the engine during the flood, %d still held at its end",
		opened.Load(), r.o.Slowloris, refused.Load(), closedByServer.Load(), held)
	c := check{Name: "GET /-/healthy answered during the slowloris flood", OK: probes > 0 && answered == probes,
		Detail: fmt.Sprintf("%d of %d requests answered 200 (the first one: %v)", answered, probes, firstAnswered)}
	if probes == 0 {
		c.Detail = "the pipeline was done before the flood was up; nothing was tried"
	}
	r.mu.Lock()
	r.checks = append(r.checks, c)
	r.mu.Unlock()
	return nil
}

// slowConn opens one connection and dribbles header lines until ctx ends; a read that
// returns before then means the engine answered or closed the connection.
func slowConn(ctx context.Context, addr string, opened, refused, closedByServer *atomic.Int64) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		refused.Add(1)
		return
	}
	opened.Add(1)
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		buf := make([]byte, 512)
		conn.Read(buf)
		if ctx.Err() == nil {
			closedByServer.Add(1)
		}
	}()
	defer func() {
		conn.Close()
		<-serverDone
	}()
	if _, err := fmt.Fprintf(conn, "GET /-/healthy HTTP/1.1\r\nHost: %s\r\n", addr); err != nil {
		return
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-serverDone:
			return
		case <-time.After(floodInterval):
		}
		if _, err := fmt.Fprintf(conn, "X-Slow-%d: x\r\n", i); err != nil {
			return
		}
	}
}
