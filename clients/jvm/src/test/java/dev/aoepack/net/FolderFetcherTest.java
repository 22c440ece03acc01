package dev.aoepack.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.aoepack.AoeException;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FolderFetcherTest {
  private static final byte[] DOC = "{\"a\":1}".getBytes(StandardCharsets.UTF_8);

  @TempDir Path tmp;
  private Path repo;
  private FolderFetcher fetcher;

  @BeforeEach
  void setUp() throws Exception {
    repo = Files.createDirectories(tmp.resolve("repo"));
    Files.createDirectories(repo.resolve("tags/t"));
    Files.write(repo.resolve("index.json"), DOC);
    Files.write(repo.resolve("tags/t/1.json"), DOC);
    Files.write(tmp.resolve("secret.json"), DOC);
    fetcher = new FolderFetcher(repo.toFile());
  }

  private String code(String path) {
    return assertThrows(AoeException.class, () -> fetcher.fetch(path, 100)).code();
  }

  @Test
  void aFileIsRead() throws Exception {
    assertArrayEquals(DOC, fetcher.fetch("index.json", 100));
    assertArrayEquals(DOC, fetcher.fetch("tags/t/1.json", DOC.length));
  }

  @Test
  void aMissingFileIsNull() throws Exception {
    assertNull(fetcher.fetch("manifest.json", 100));
    assertNull(fetcher.fetch("tags/u/1.json", 100));
  }

  @Test
  void aFileOverTheCapIsTooLarge() {
    assertEquals("download-too-large",
        assertThrows(AoeException.class, () -> fetcher.fetch("index.json", DOC.length - 1)).code());
  }

  @Test
  void dotDotOutOfTheFolderIsRefused() {
    assertEquals("store", code("../secret.json"));
  }

  @Test
  void dotDotInsideTheFolderIsRefusedToo() {
    assertEquals("store", code("tags/../index.json"));
  }

  @Test
  void anAbsolutePathIsRefused() {
    assertEquals("store", code(tmp.resolve("secret.json").toString()));
  }

  @Test
  void aBackslashPathIsRefused() {
    assertEquals("store", code("..\\secret.json"));
  }

  @Test
  void aSymlinkOutOfTheFolderIsRefused() throws Exception {
    Files.createSymbolicLink(repo.resolve("leak.json"), tmp.resolve("secret.json"));
    assertEquals("store", code("leak.json"));
  }

  @Test
  void aSymlinkedFolderOutOfTheFolderIsRefused() throws Exception {
    Files.createSymbolicLink(repo.resolve("out"), tmp);
    assertEquals("store", code("out/secret.json"));
  }

  @Test
  void aDanglingSymlinkOutOfTheFolderIsAbsentAndRefusedOnceItLeadsSomewhere() throws Exception {
    Files.createSymbolicLink(repo.resolve("gone.json"), tmp.resolve("nothing.json"));
    assertNull(fetcher.fetch("gone.json", 100));
    Files.write(tmp.resolve("nothing.json"), DOC);
    assertEquals("store", code("gone.json"));
  }

  @Test
  void aSymlinkInsideTheFolderIsFollowed() throws Exception {
    Files.createSymbolicLink(repo.resolve("alias.json"), repo.resolve("index.json"));
    assertArrayEquals(DOC, fetcher.fetch("alias.json", 100));
  }

  @Test
  void aFolderIsNotAFile() {
    assertEquals("store", code("tags"));
  }

  @Test
  void aDeviceIsNotAFile() throws Exception {
    Files.createSymbolicLink(repo.resolve("zero.json"), new File("/dev/zero").toPath());
    assertEquals("store", code("zero.json")); // outside the folder, and never ending
  }
}
