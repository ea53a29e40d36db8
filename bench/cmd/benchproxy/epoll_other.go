//go:build !linux

package main

import "errors"

// serveEpoll is Linux's only (epoll.go).
func serveEpoll(listen, upstream string) error {
	return errors.New("-server epoll: Linux only")
}
