// Drives a full flow through openapi-fetch, typed by the schema that openapi-typescript generates
// from openapi.yaml (no hand edits). `npm run check` type-checks it; `npm run flow -- URL` runs it.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema";

// The timeline's items are the document's `Post`, by name.
type Post = components["schemas"]["Post"];

declare const process: { argv: string[]; exit(code: number): never };

const baseUrl = process.argv[2];
const suffix = Math.random().toString(36).slice(2, 10);
const api = createClient<paths>({ baseUrl });

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    console.error(`typescript client flow failed: ${message}`);
    process.exit(1);
  }
}

async function signUp(name: string): Promise<{ username: string; auth: { Authorization: string } }> {
  const { data, response } = await api.POST("/auth/register", {
    body: { username: `${name}_${suffix}`, email: `${name}_${suffix}@example.com`, password: "ts-client-password" },
  });
  check(response.status === 201 && data, `register ${name}: ${response.status}`);
  return { username: data.user.username, auth: { Authorization: `Bearer ${data.access_token}` } };
}

const alice = await signUp("alice");
const bob = await signUp("bob");

const followed = await api.POST("/users/{username}/follow", {
  params: { path: { username: bob.username } },
  headers: alice.auth,
});
check(followed.response.status === 201 && followed.data?.following === true, "follow");

const followers = await api.GET("/users/{username}/followers", { params: { path: { username: bob.username } } });
check(followers.data?.items.map((item) => item.user.username).join() === alice.username, "followers");

for (const text of ["first", "second", "third"]) {
  const created = await api.POST("/posts", { body: { body: `${text} post` }, headers: bob.auth });
  check(created.response.status === 201 && created.data?.author.username === bob.username, `post ${text}`);
}

const firstPage = await api.GET("/timeline", { params: { query: { limit: 2 } }, headers: alice.auth });
check(firstPage.data?.items.map((post) => post.body).join() === "third post,second post", "timeline page 1");
const firstPosts: Post[] = firstPage.data.items;
check(firstPosts.length === 2, "timeline items are Post");
const cursor = firstPage.data.next_cursor;
check(typeof cursor === "string", "a next cursor");
const secondPage = await api.GET("/timeline", { params: { query: { limit: 2, cursor } }, headers: alice.auth });
check(secondPage.data?.items.map((post) => post.body).join() === "first post", "timeline page 2");
check(secondPage.data.next_cursor === null, "the last page");

// Log in, refresh explicitly (as a client does before `expires_in` runs out), and carry on with
// the new token. Works against a server with any token lifetime, the default one included.
const loggedIn = await api.POST("/auth/login", { body: { username: alice.username, password: "ts-client-password" } });
check(loggedIn.response.status === 200 && loggedIn.data !== undefined, "login");
check(Number.isInteger(loggedIn.data.expires_in) && loggedIn.data.expires_in > 0, "a positive expires_in");
const session = { Authorization: `Bearer ${loggedIn.data.access_token}` };
check((await api.GET("/users/me", { headers: session })).response.status === 200, "the fresh token works");
const forged = await api.GET("/users/me", { headers: { Authorization: `Bearer ${loggedIn.data.access_token}x` } });
check(forged.response.status === 401, "a forged token is refused");
const refreshed = await api.POST("/auth/refresh", { body: { refresh_token: loggedIn.data.refresh_token } });
check(refreshed.response.status === 200 && refreshed.data, "refresh");
check(refreshed.data.refresh_token !== loggedIn.data.refresh_token, "the refresh token rotates");
check(refreshed.data.expires_in > 0, "the refreshed expires_in");
const renewed = { Authorization: `Bearer ${refreshed.data.access_token}` };
const me = await api.GET("/users/me", { headers: renewed });
check(me.data?.username === alice.username, "the refreshed token works");
const again = await api.GET("/timeline", { params: { query: { limit: 2 } }, headers: renewed });
check(again.data?.items.map((post) => post.body).join() === "third post,second post", "carry on");

const missing = await api.GET("/posts/{id}", { params: { path: { id: 999999999 } } });
check(missing.response.status === 404, "a missing post is 404");
check(missing.error?.code === "post_not_found" && missing.error.status === 404, "the 404 problem body");

console.log("typescript client flow: ok");
