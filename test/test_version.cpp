// SPDX-License-Identifier: BSL-1.0
// <chunkpmr/version.hpp>, CMake's project(VERSION) and Jamroot's version agree.
#define BOOST_TEST_MODULE version
#include <boost/test/unit_test.hpp>

#include <chunkpmr/version.hpp>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace {

std::string header_version() {
  return std::to_string(CHUNKPMR_VERSION_MAJOR) + "." + std::to_string(CHUNKPMR_VERSION_MINOR) +
         "." + std::to_string(CHUNKPMR_VERSION_PATCH);
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(combined_number_follows_the_parts) {
  BOOST_TEST(CHUNKPMR_VERSION == CHUNKPMR_VERSION_MAJOR * 10000 + CHUNKPMR_VERSION_MINOR * 100 +
                                     CHUNKPMR_VERSION_PATCH);
}

BOOST_AUTO_TEST_CASE(header_cmake_and_b2_agree) {
  // The source tree, from this file's own path (absolute with CMake, relative to the
  // project root, where b2 runs its tests, with b2).
  std::string source_dir = __FILE__;
  source_dir.erase(source_dir.rfind("test/test_version.cpp"));
  if (source_dir.empty()) source_dir = ".";
  std::smatch m;
  const std::string cmake = read_file((source_dir + "/CMakeLists.txt").c_str());
  BOOST_REQUIRE(std::regex_search(cmake, m, std::regex(R"(project\(chunkpmr VERSION ([0-9.]+))")));
  BOOST_TEST(m[1].str() == header_version());
  const std::string jam = read_file((source_dir + "/Jamroot").c_str());
  BOOST_REQUIRE(std::regex_search(jam, m, std::regex(R"(constant CHUNKPMR_VERSION : ([0-9.]+) ;)")));
  BOOST_TEST(m[1].str() == header_version());
}
