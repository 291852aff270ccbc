package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// dashboardHTML is the whole dashboard: one page of HTML, CSS and vanilla JavaScript that
// learns the route paths from /-/routes, so it needs no build step and no configuration.
//
//go:embed dashboard/index.html
var dashboardHTML []byte

func serveDashboard(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(dashboardHTML)
}
