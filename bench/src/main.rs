//! `cargo run --release -p bench -- seed ...` fills a database with a deterministic social graph;
//! `cargo run --release -p bench -- run ...` measures the API on it. See bench/README.md.

mod load;
mod media;
mod push;
mod run;
mod seed;
mod standby;
mod streams;
mod verify;
mod writes;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Seeder and load benchmark of the social API")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Fill an empty database (any backend) with a deterministic, skewed social graph.
    Seed {
        /// sqlite://, postgres:// or mysql:// URL of an empty (or not yet migrated) database.
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        #[arg(long, default_value_t = 5_000_000)]
        follows: usize,
        #[arg(long, default_value_t = 2_000_000)]
        posts: usize,
        /// Seed of the random generator: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows per INSERT statement.
        #[arg(long, default_value_t = 2_000)]
        batch: usize,
    },
    /// Start the server on a seeded database and measure every scenario.
    Run {
        #[arg(long)]
        database_url: String,
        /// The server binary to start (build it with `cargo build --release` first).
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Seconds of measurement per scenario.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Write the Markdown report here as well as to standard output.
        #[arg(long)]
        output: Option<String>,
        /// A PostgreSQL hot standby of --database-url: instead of every scenario, measure the
        /// read scenarios through a server reading from it against one reading from the primary.
        #[arg(long)]
        read_url: Option<String>,
        /// Give every account an avatar for the run (one image, set by celebrity1 through the
        /// API), so that every card carries an `avatar_url`; taken back at the end.
        #[arg(long)]
        avatars: bool,
    },
    /// Measure image uploads and reads on a seeded database: one at a time (latency, the server's
    /// CPU per image), 4 at once (the server's peak memory, a timeline's latency meanwhile), and
    /// `GET /media/{id}` whole and revalidated.
    Media {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Seconds of measuring per phase.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The uploaded photo's size in megapixels (its JPEG stays within 8 MiB).
        #[arg(long, default_value_t = 24.0)]
        megapixels: f64,
        #[arg(long)]
        output: Option<String>,
    },
    /// Measure the event stream on a seeded database: a celebrity's post reaching its followers'
    /// open streams over two server processes, and the memory of idle streams.
    Streams {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Streams of celebrity1's followers, split over two processes.
        #[arg(long, default_value_t = 1_000)]
        listeners: usize,
        /// Posts celebrity1 writes while they listen.
        #[arg(long, default_value_t = 20)]
        posts: usize,
        /// Idle streams held open on one process.
        #[arg(long, default_value_t = 10_000)]
        idle: usize,
        #[arg(long)]
        output: Option<String>,
    },
    /// Measure Web Push on a seeded database: a burst of notifications to celebrity1's
    /// subscribed followers, pushed to a push service on loopback.
    Push {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Followers of celebrity1 that subscribe, each notified once.
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        #[arg(long)]
        output: Option<String>,
    },
    /// Measure the request path on a seeded database: many clients at once against a profile and
    /// timelines, for the server's CPU per request and its requests per second.
    Load {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Seconds of measuring per scenario and round.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Rounds over the scenarios (their figures are summed).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long)]
        output: Option<String>,
    },
    /// Measure post writes on a seeded database: many accounts posting at once through the API,
    /// against the database's bare-insert ceiling, while a poller checks that no post is skipped.
    Writes {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "target/release/social")]
        server_bin: String,
        /// Seconds of writing per concurrency.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The numbers of concurrent writers, one phase each.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
        concurrency: Vec<usize>,
        /// The server's `DATABASE_POOL_SIZE`.
        #[arg(long, default_value_t = 10)]
        pool_size: u32,
        #[arg(long)]
        output: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let result = match Cli::parse().command {
        Commands::Seed {
            database_url,
            users,
            follows,
            posts,
            seed,
            batch,
        } => {
            seed::run(seed::SeedOptions {
                database_url,
                users,
                follows,
                posts,
                seed,
                batch,
            })
            .await
        }
        Commands::Run {
            database_url,
            server_bin,
            seconds,
            output,
            read_url,
            avatars,
        } => {
            run::run(run::RunOptions {
                database_url,
                read_url,
                server_bin,
                seconds,
                output,
                command_line,
                avatars,
            })
            .await
        }
        Commands::Media {
            database_url,
            server_bin,
            seconds,
            megapixels,
            output,
        } => {
            media::run(media::MediaOptions {
                database_url,
                server_bin,
                seconds,
                megapixels,
                output,
                command_line,
            })
            .await
        }
        Commands::Streams {
            database_url,
            server_bin,
            listeners,
            posts,
            idle,
            output,
        } => {
            streams::run(streams::StreamOptions {
                database_url,
                server_bin,
                listeners,
                posts,
                idle,
                output,
                command_line,
            })
            .await
        }
        Commands::Push {
            database_url,
            server_bin,
            subscribers,
            output,
        } => {
            push::run(push::PushOptions {
                database_url,
                server_bin,
                subscribers,
                output,
                command_line,
            })
            .await
        }
        Commands::Load {
            database_url,
            server_bin,
            seconds,
            clients,
            rounds,
            output,
        } => {
            load::run(load::LoadOptions {
                database_url,
                server_bin,
                seconds,
                clients,
                rounds,
                output,
                command_line,
            })
            .await
        }
        Commands::Writes {
            database_url,
            server_bin,
            seconds,
            concurrency,
            pool_size,
            output,
        } => {
            writes::run(writes::WritesOptions {
                database_url,
                server_bin,
                seconds,
                concurrency,
                pool_size,
                output,
                command_line,
            })
            .await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
