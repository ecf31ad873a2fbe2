// A stock embedded Jetty 9 servlet app used as an upstream by the canonical-path tests
// (tests/api/canonical_paths.rs). Servlet mappings are the container's own: Jetty decodes the path and
// strips `;` path parameters before it picks a servlet, as every servlet container does, so
// `/reports;x=y` reaches the `/reports/*` servlet. Each servlet answers with JSON naming its mapping.
//
// Compiled at test time against Debian's libjetty9-java (scripts/ensure-jetty.sh installs it).
// Prints `listening <port>` once it accepts connections on 127.0.0.1; exits when its stdin closes.

import java.io.IOException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public final class PathsApp {
    /** Answers every method with the mapping it was registered under and what the container saw. */
    static final class Echo extends HttpServlet {
        private final String route;

        Echo(String route) {
            this.route = route;
        }

        @Override
        protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
            response.setStatus(route == null ? 404 : 200);
            response.setContentType("application/json");
            String body = "{\"route\":" + quote(route)
                + ",\"method\":" + quote(request.getMethod())
                + ",\"servletPath\":" + quote(request.getServletPath())
                + ",\"pathInfo\":" + quote(request.getPathInfo())
                + ",\"uri\":" + quote(request.getRequestURI()) + "}";
            response.getWriter().write(body);
        }
    }

    static String quote(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        Server server = new Server();
        ServerConnector connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        server.addConnector(connector);
        ServletContextHandler context = new ServletContextHandler();
        context.setContextPath("/");
        context.addServlet(new ServletHolder(new Echo("/overview")), "/overview");
        context.addServlet(new ServletHolder(new Echo("/reports/*")), "/reports/*");
        context.addServlet(new ServletHolder(new Echo("/admin/*")), "/admin/*");
        context.addServlet(new ServletHolder(new Echo(null)), "/");
        server.setHandler(context);
        server.start();
        System.out.println("listening " + connector.getLocalPort());
        System.out.flush();
        while (System.in.read() != -1) {
            // Runs until the test that started it closes stdin (or goes away).
        }
        server.stop();
        System.exit(0);
    }
}
