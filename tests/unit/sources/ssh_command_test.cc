// Parsing tape.conf's ssh_command and ssh_* keys into an SshTarget.

#include "sources/ssh_command.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace hsmfs::hsmtape {
namespace {

std::string LocalUser() { return ::getpwuid(::getuid())->pw_name; }

SshTarget Parse(const std::string& command) {
  auto r = ParseSshCommand(command);
  EXPECT_TRUE(r.ok()) << command << ": " << r.status().ToString();
  return r.ok() ? *r : SshTarget{};
}

// The command is rejected with one line that contains `names`.
void ExpectBad(const std::string& command, const std::string& names) {
  auto r = ParseSshCommand(command);
  ASSERT_FALSE(r.ok()) << command;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << command;
  EXPECT_NE(r.status().message().find(names), std::string::npos)
      << command << " -> " << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("ssh_command", 0), 0u) << r.status().message();
}

TEST(ParseSshCommandTest, TapeopForm) {
  SshTarget t = Parse("ssh user@my-data-host -i /home/user/.ssh/unlocked_key");
  EXPECT_EQ(t.host, "my-data-host");
  EXPECT_EQ(t.user, "user");
  EXPECT_EQ(t.key_file, "/home/user/.ssh/unlocked_key");
  EXPECT_EQ(t.port, 22);
  EXPECT_FALSE(t.accept_unknown_host);
  EXPECT_EQ(t.known_hosts, "");
  EXPECT_EQ(t.Describe(), "user@my-data-host:22");
}

TEST(ParseSshCommandTest, OrderDoesNotMatter) {
  for (const std::string cmd :
       {"ssh user@host -i /k -p 2222", "ssh -i /k -p 2222 user@host", "ssh -p 2222 user@host -i /k",
        "ssh -p2222 -i/k user@host", "ssh -l user -p 2222 host -i /k",
        "/usr/bin/ssh host -l user -i /k -o Port=2222", "  ssh\tuser@host  -i /k  -p 2222  "}) {
    SshTarget t = Parse(cmd);
    EXPECT_EQ(t.host, "host") << cmd;
    EXPECT_EQ(t.user, "user") << cmd;
    EXPECT_EQ(t.key_file, "/k") << cmd;
    EXPECT_EQ(t.port, 2222) << cmd;
  }
}

TEST(ParseSshCommandTest, Options) {
  EXPECT_TRUE(Parse("ssh -o StrictHostKeyChecking=no u@h").accept_unknown_host);
  EXPECT_TRUE(Parse("ssh -o StrictHostKeyChecking=accept-new u@h").accept_unknown_host);
  EXPECT_TRUE(Parse("ssh -oStrictHostKeyChecking=no u@h").accept_unknown_host);
  EXPECT_TRUE(Parse("ssh -o 'stricthostkeychecking no' u@h").accept_unknown_host);
  EXPECT_FALSE(Parse("ssh -o StrictHostKeyChecking=yes u@h").accept_unknown_host);
  EXPECT_EQ(Parse("ssh -o UserKnownHostsFile=/etc/kh u@h").known_hosts, "/etc/kh");
  EXPECT_EQ(Parse("ssh -o IdentityFile=/k2 u@h").key_file, "/k2");
  EXPECT_EQ(Parse("ssh -o User=bob h").user, "bob");
  EXPECT_EQ(Parse("ssh -o ConnectTimeout=7 u@h").connect_timeout, std::chrono::seconds(7));
  SshTarget t = Parse("ssh -q -T -x -o BatchMode=yes u@h");
  EXPECT_EQ(t.host, "h");
  EXPECT_EQ(t.user, "u");
}

TEST(ParseSshCommandTest, DefaultsAndQuoting) {
  SshTarget t = Parse("ssh data-host");
  EXPECT_EQ(t.user, LocalUser());
  EXPECT_EQ(t.key_file, "");
  EXPECT_EQ(Parse("ssh u@h -i '/keys/my key'").key_file, "/keys/my key");
  EXPECT_EQ(Parse("ssh u@h -i \"/keys/my key\"").key_file, "/keys/my key");
  EXPECT_EQ(Parse("ssh u@h -i /keys/my\\ key").key_file, "/keys/my key");
  const char* home = std::getenv("HOME");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(Parse("ssh u@h -i ~/.ssh/k").key_file, std::string(home) + "/.ssh/k");
  // A user name may itself contain '@' (e.g. a Kerberos-style login).
  SshTarget at = Parse("ssh first.last@example.org@host");
  EXPECT_EQ(at.user, "first.last@example.org");
  EXPECT_EQ(at.host, "host");
}

TEST(ParseSshCommandTest, RejectsWithOneLineNamingTheToken) {
  ExpectBad("", "empty");
  ExpectBad("scp u@h", "'scp'");
  ExpectBad("ssh", "no host");
  ExpectBad("ssh -i /k", "no host");
  ExpectBad("ssh -A u@h", "'-A'");
  ExpectBad("ssh -J jump u@h", "'-J'");
  ExpectBad("ssh u@h -v", "'-v'");
  ExpectBad("ssh u@h ls /data", "'ls'");
  ExpectBad("ssh u@h other@host", "'other@host'");
  ExpectBad("ssh -p abc u@h", "'abc'");
  ExpectBad("ssh -p 70000 u@h", "'70000'");
  ExpectBad("ssh -p 0 u@h", "'0'");
  ExpectBad("ssh u@h -i", "'-i'");
  ExpectBad("ssh u@h -p", "'-p'");
  ExpectBad("ssh -o ProxyJump=gw u@h", "ProxyJump");
  ExpectBad("ssh -o StrictHostKeyChecking=maybe u@h", "StrictHostKeyChecking=maybe");
  ExpectBad("ssh -o Port u@h", "'-o Port'");
  ExpectBad("ssh -l alice bob@h", "user given twice");
  ExpectBad("ssh @h", "empty user");
  ExpectBad("ssh u@", "no host");
  ExpectBad("ssh u@h -i '/k", "unterminated single quote");
}

TEST(SshTargetFromConfigTest, NoSshKeysMeansLocal) {
  auto r = SshTargetFromConfig({{"database_file", "run1.sqlite"}, {"tape_device", "/dev/nst0"}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST(SshTargetFromConfigTest, SshCommand) {
  auto r = SshTargetFromConfig({{"ssh_command", "ssh act@data1 -i /k -p 2200"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->host, "data1");
  EXPECT_EQ((*r)->user, "act");
  EXPECT_EQ((*r)->port, 2200);
}

TEST(SshTargetFromConfigTest, SeparateKeys) {
  auto r = SshTargetFromConfig(
      {{"ssh_host", "data1"}, {"ssh_user", "act"}, {"ssh_key", "/k"}, {"ssh_port", "2200"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->host, "data1");
  EXPECT_EQ((*r)->user, "act");
  EXPECT_EQ((*r)->key_file, "/k");
  EXPECT_EQ((*r)->port, 2200);

  auto minimal = SshTargetFromConfig({{"ssh_host", "data1"}});
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ((*minimal)->user, LocalUser());
  EXPECT_EQ((*minimal)->port, 22);
}

TEST(SshTargetFromConfigTest, BadKeysNamed) {
  auto both = SshTargetFromConfig({{"ssh_command", "ssh u@h"}, {"ssh_port", "22"}});
  EXPECT_EQ(both.status().code(), Code::kInvalidArgument);
  EXPECT_NE(both.status().message().find("ssh_command and ssh_port"), std::string::npos)
      << both.status().message();
  auto no_host = SshTargetFromConfig({{"ssh_user", "u"}});
  EXPECT_NE(no_host.status().message().find("ssh_host"), std::string::npos);
  auto bad_port = SshTargetFromConfig({{"ssh_host", "h"}, {"ssh_port", "twenty"}});
  EXPECT_EQ(bad_port.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad_port.status().message().rfind("ssh_port", 0), 0u) << bad_port.status().message();
  auto bad_command = SshTargetFromConfig({{"ssh_command", "ssh -A u@h"}});
  EXPECT_NE(bad_command.status().message().find("'-A'"), std::string::npos);
}

}  // namespace
}  // namespace hsmfs::hsmtape
